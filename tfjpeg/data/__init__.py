"""What to learn from: registered tasks (`tasks`), their sources (the
built-in generators, real photos, folders, TFDS builders), manifests and
splits by source image, the lattice cache, and the shortcut audit of a task's
files.

May import: tfjpeg.core, tfjpeg.codec, tfjpeg.config.
"""

"""The task registry: which images, which classes, patch size, split.

A `Task` hands the input pipeline a stream of encoded images per split
(`{"encoded", "label", "image_id"}`), never decoded, never re-encoded.

  cameras   built-in forensic task: four simulated cameras, shared scenes
  cameras_random_cfa  the same cameras at a random colour-filter phase: only
            the JPEG grid is locked to the image origin
  shapes    built-in vision task: four visible shapes, random cameras
  generated  built-in real-against-generated task: the same scenes as real
            photos and as generated images (a faint up-sampling trace), both
            stored as JPEG at QF 96
  generated_confounded  the same, with the generated images stored as PNG,
            as public datasets do: the file format gives the class away
  real_history  compression history of real never-compressed photos (never, or
            once before at QF 90, 80, 70), generated from ../shared/data
  real_cameras  the simulated cameras shooting real photos (downscaled by 2 first)
  folder    any tree DIR/<class>/<images> (JPEG, PNG, TIFF, BMP, WebP)
  vision    VISION camera models (TFDS, manual download), 512 px, 10 patches
  gan       CycleGAN real vs fake (TFDS, manual download), 224 px
  imagenet  16 ILSVRC2012 synsets (TFDS, manual download), 224 px
  lsun      20 LSUN object categories (TFDS, manual download), 224 px
"""

import dataclasses
import hashlib
import os
from collections.abc import Callable

import pandas as pd
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import images as images_lib
from tfjpeg.core import seeds
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import DataError
from tfjpeg.data import builtin
from tfjpeg.data import lattice
from tfjpeg.data import manifest
from tfjpeg.data import real_photos
from tfjpeg.data import splits


@dataclasses.dataclass
class Task:
  """A task ready for the pipeline."""

  name: str
  kind: str  # "forensic", "vision" or "custom"
  class_names: list
  patch_size: int
  patches_per_image: int
  # images(split, shuffle_seed) -> Dataset of {"encoded", "label", "image_id"}
  images: Callable
  num_images: dict  # split -> count
  bad_files: pd.DataFrame  # path, class_name, problem
  summary: str = ""
  files: pd.DataFrame | None = None  # the manifest (path, image_id, split, ...), if files
  # Set when `images` delivers each image already compressed whole at this QF
  # (tfjpeg.data.lattice's cache), so the pipeline skips that step.
  lattice_qf: int | None = None
  # Whether how files are saved is part of what defines the classes (camera
  # models write their own JPEG tables): the shortcut audit then states a
  # metadata cue as a fact of the task instead of warning of a shortcut.
  processing_is_class: bool = False

  @property
  def num_classes(self):
    return len(self.class_names)

  def read_from(self, replacements):
    """images(split, shuffle_seed) reading `replacements[path]` instead of each
    file of the manifest (same ids, labels and order)."""
    return _images_from_files(self.files.assign(path=self.files["path"].map(replacements)))

  def lost_images(self, split, seen_ids):
    """The images of `split` a pipeline did not deliver (`seen_ids`: what it
    did), with the probe's verdict on each file now: path, class_name, problem."""
    columns = ["path", "class_name", "problem"]
    if self.files is None:  # a prepared TFDS dataset: counts only
      missing = self.num_images[split] - len(seen_ids)
      return pd.DataFrame(
        [
          dict(
            path=f"{missing} images of {self.name}",
            class_name="",
            problem="failed to decode at run time",
          )
        ]
        if missing > 0
        else [],
        columns=columns,
      )
    rows = self.files[(self.files["split"] == split) & ~self.files["image_id"].isin(seen_ids)]
    lost = []
    for row in rows.itertuples():
      try:
        images_lib.probe(row.path)
        problem = "failed to decode at run time"
      except images_lib.BadImageError as e:
        problem = f"changed since it was probed: {e.problem}"
      lost.append(dict(path=row.path, class_name=row.class_name, problem=problem))
    return pd.DataFrame(lost, columns=columns)


def _images_from_files(files):
  """images(split, shuffle_seed) over a manifest's file table (path, label,
  image_id, split): each file read as it is, never decoded here."""

  def images(split, shuffle_seed=None):
    rows = files[files["split"] == split]
    # Explicit dtypes: an empty split would otherwise come out as float32.
    dataset = tf.data.Dataset.from_tensor_slices(
      dict(
        path=tf.constant(rows["path"].tolist(), tf.string),
        label=tf.constant(rows["label"].tolist(), tf.int32),
        image_id=tf.constant(rows["image_id"].tolist(), tf.string),
      )
    )
    if shuffle_seed is not None:  # shuffle paths, not pixels: cheap, whole-epoch
      dataset = dataset.shuffle(
        max(1, len(rows)), seed=seeds.to_int(shuffle_seed), reshuffle_each_iteration=False
      )
    return dataset.map(
      lambda r: dict(encoded=tf.io.read_file(r["path"]), label=r["label"], image_id=r["image_id"]),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True,
    )

  return images


def _file_task(name, kind, found, patch_size, patches_per_image):
  counts = {s: int((found.files["split"] == s).sum()) for s in splits.SPLITS}
  return Task(
    name,
    kind,
    list(found.class_names),
    patch_size,
    patches_per_image,
    _images_from_files(found.files),
    counts,
    found.bad_files,
    found.summary(),
    found.files,
  )


def _fractions(options):
  return splits.SplitFractions(options.test_fraction, options.validation_fraction)


def _pick(value, default):
  return default if value is None else value


def _builtin(
  kind,
  task_kind,
  name,
  default_scenes,
  default_size,
  default_patch,
  default_ppi,
  processing_is_class=False,
):
  def make(options):
    patch = _pick(options.patch_size, default_patch)
    size = _pick(options.image_size, max(default_size, patch))
    root = builtin.materialize(
      kind,
      _pick(options.builtin_scenes, default_scenes),
      size,
      seed=options.builtin_seed,
      root=options.data_dir,
    )
    found = manifest.from_class_folders(
      root, (patch, patch), _fractions(options), options.split_seed
    )
    task = _file_task(name, task_kind, found, patch, _pick(options.patches_per_image, default_ppi))
    return dataclasses.replace(task, processing_is_class=processing_is_class)

  return make


def _real(kind, default_ppi):
  """A real-photo task: `data_dir` is the shared photo folder (default ../shared/data),
  `image_size` the tile side, `num_scenes` the number of photos used."""

  def make(options):
    patch = _pick(options.patch_size, _PATCH[f"real_{kind}"])
    root = real_photos.materialize(
      kind, options.image_size, options.builtin_scenes, options.builtin_seed, options.data_dir
    )
    found = manifest.from_class_folders(
      root, (patch, patch), _fractions(options), options.split_seed, group=real_photos.group_of
    )
    task = _file_task(
      f"real_{kind}", "forensic", found, patch, _pick(options.patches_per_image, default_ppi)
    )
    # Compression history is the real_history task's class; cameras' JPEG theirs.
    return dataclasses.replace(task, processing_is_class=True)

  return make


def _folder(options):
  if not options.data_dir:
    raise ConfigError("the folder task needs --data_dir=DIR with one subfolder per class")
  patch = _pick(options.patch_size, _PATCH["folder"])
  found = manifest.from_class_folders(
    options.data_dir, (patch, patch), _fractions(options), options.split_seed
  )
  return _file_task("folder", "custom", found, patch, _pick(options.patches_per_image, 1))


def labelled_folder(root, patch_size, patches_per_image=1, class_names=None, decode_check=True):
  """Every image of `root/<class>/...` as the test split of a `folder` task:
  images a trained model is audited on, none trained on. With `class_names`
  (the model's, in its output order), labels index that list, and a folder
  named like none of them is refused. `decode_check` is `images.probe`'s."""
  found = manifest.from_class_folders(root, (patch_size, patch_size), decode_check=decode_check)
  files = found.files.assign(split="test")
  names = list(found.class_names)
  if class_names is not None:
    unknown = sorted(set(names) - set(class_names))
    if unknown:
      raise DataError(
        f"{root} has class folders {unknown} that the model does not know "
        f"(its classes: {', '.join(class_names)}; --class_names names its outputs in order)"
      )
    names = list(class_names)
    files["label"] = files["class_name"].map({n: i for i, n in enumerate(names)})
  counts = {s: int((files["split"] == s).sum()) for s in splits.SPLITS}
  summary = manifest.Manifest(list(found.class_names), files, found.bad_files).summary()
  return Task(
    "folder",
    "custom",
    names,
    patch_size,
    patches_per_image,
    _images_from_files(files),
    counts,
    found.bad_files,
    summary,
    files,
  )


def synsets_config_name(synsets):
  """The TFDS config name of an ImageNet synset list: a hash of the whole list
  (a prefix of the joined names, kept short, let two lists share a dataset)."""
  digest = hashlib.sha1(",".join(synsets).encode()).hexdigest()[:16]
  return f"synsets{len(synsets)}-{digest}"


def _tfds(key, kind, default_patch, default_ppi):
  def make(options):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    from tfjpeg.data import tfds_builders  # pylint: disable=g-import-not-at-top

    if (options.test_fraction, options.validation_fraction) != (0.2, 0.15):
      raise ConfigError(
        f"the {key} task's split is fixed when its TFDS dataset is "
        "built (20% test, 15% validation); use the folder task for others"
      )
    cls = tfds_builders.BUILDERS[key]
    kwargs = dict(data_dir=options.tfds_data_dir)
    if key == "imagenet" and options.synsets:
      kwargs["config"] = tfds_builders.ImagenetConfig(
        name=synsets_config_name(options.synsets), synsets=tuple(options.synsets)
      )
    builder = cls(**kwargs)
    if not builder.is_prepared():
      manual_dir = options.data_dir
      if not manual_dir:
        raise ConfigError(
          f"the {key} task is not built yet: pass --data_dir=<manual "
          f"directory>.\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
      builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir))
      )

    def images(split, shuffle_seed=None):
      if not counts[split]:
        raise DataError(f"the {key} dataset has no {split} images: too few sources")
      read_config = tfds.ReadConfig(
        shuffle_seed=None if shuffle_seed is None else seeds.to_int(shuffle_seed)
      )
      dataset = builder.as_dataset(
        split=split, shuffle_files=shuffle_seed is not None, read_config=read_config
      )
      if shuffle_seed is not None:
        dataset = dataset.shuffle(256, seed=seeds.to_int(shuffle_seed))
      return dataset.map(
        lambda r: dict(
          encoded=r["image"], label=tf.cast(r["label"], tf.int32), image_id=r["image_id"]
        )
      )

    bad = pd.DataFrame(
      builder.info.metadata.get("bad_files", []), columns=["path", "class_name", "problem"]
    )
    counts = {
      s: builder.info.splits[s].num_examples if s in builder.info.splits else 0
      for s in splits.SPLITS
    }
    names = builder.info.features["label"].names
    summary = (
      f"{sum(counts.values())} images in {len(names)} classes ({counts}); {len(bad)} bad files"
    )
    return Task(
      key,
      kind,
      names,
      _pick(options.patch_size, default_patch),
      _pick(options.patches_per_image, default_ppi),
      images,
      counts,
      bad,
      summary,
      processing_is_class=key == "vision",
    )

  return make


_PATCH = config_lib.TASK_PATCH
TASKS = {
  "cameras": _builtin("cameras", "forensic", "cameras", 200, 128, _PATCH["cameras"], 4, True),
  "cameras_random_cfa": _builtin(
    "cameras_random_cfa",
    "forensic",
    "cameras_random_cfa",
    200,
    128,
    _PATCH["cameras_random_cfa"],
    4,
    True,
  ),
  "shapes": _builtin("shapes", "vision", "shapes", 800, 96, _PATCH["shapes"], 4),
  "generated": _builtin("generated", "forensic", "generated", 1000, 96, _PATCH["generated"], 4),
  "generated_confounded": _builtin(
    "generated_confounded",
    "forensic",
    "generated_confounded",
    1000,
    96,
    _PATCH["generated_confounded"],
    4,
  ),
  "real_history": _real("history", 4),
  "real_cameras": _real("cameras", 4),
  "folder": _folder,
  "vision": _tfds("vision", "forensic", _PATCH["vision"], 10),
  "gan": _tfds("gan", "forensic", _PATCH["gan"], 1),
  "imagenet": _tfds("imagenet", "vision", _PATCH["imagenet"], 1),
  "lsun": _tfds("lsun", "vision", _PATCH["lsun"], 1),
}
DEFAULT_TASK = config_lib.TaskConfig().name


def get(config: "config_lib.TaskConfig | str") -> "Task":
  """Builds the task `config` names (a `tfjpeg.config.TaskConfig`, or a task
  name for its defaults)."""
  if isinstance(config, str):
    config = config_lib.TaskConfig(name=config)
  if config.name not in TASKS:
    raise ConfigError(f"--task: {config.name!r} is no registered task ({', '.join(sorted(TASKS))})")
  return TASKS[config.name](config)


def examples(task, per_class=3, split="train"):
  """{class name: the first `per_class` decoded images of that class}."""
  found = {c: [] for c in range(task.num_classes)}
  for element in task.images(split):
    label = int(element["label"])
    if len(found[label]) < per_class:
      found[label].append(images_lib.decode(element["encoded"]).numpy())
    if all(len(v) == per_class for v in found.values()):
      break
  return {task.class_names[c]: pictures for c, pictures in found.items()}


def task_for(config, log=print):
  """The task of `config`, reading cached lattice images if it has a lattice QF
  (unless `config.jpeg.lattice_cache` is off)."""
  task = get(config.task)
  if config.jpeg.lattice_cache:
    task = lattice.cached_task(task, config.jpeg.lattice_qf, config.jpeg.chroma, log=log)
  return task

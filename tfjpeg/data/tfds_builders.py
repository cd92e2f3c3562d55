"""TFDS builders for the paper's datasets: local files in, original bytes stored.

Each builder stores every image's file bytes unchanged (a JPEG stays the same
JPEG: TFDS's `Image` feature would re-encode decoded arrays), its label, its
image id and its source, in three splits made by `tfjpeg.data.splits` (80% train
and validation 85/15, 20% test, by source). Bad files are logged and listed in
the dataset's metadata (`info.metadata["bad_files"]`), never silently dropped.
"""

import dataclasses
import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from tfjpeg.codec import images
from tfjpeg.data import manifest
from tfjpeg.data import splits

_FEATURES = dict(
  image=tfds.features.Tensor(shape=(), dtype=np.object_),  # original file bytes
  image_id=tfds.features.Text(),
  source=tfds.features.Text(),
)


class _ManualImageBuilder(tfds.core.GeneratorBasedBuilder):
  """Shared logic: find (path, class, source) entries, probe, split, store bytes."""

  VERSION = tfds.core.Version("1.0.0")
  MIN_SIZE = 224  # the paper's patch size for this dataset

  def _class_names(self):
    raise NotImplementedError

  def _entries(self, manual_dir, class_names):
    """Yields (path, class_name, source) for every image of the dataset."""
    raise NotImplementedError

  def _info(self):
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        dict(_FEATURES, label=tfds.features.ClassLabel(names=self._class_names()))
      ),
      metadata=tfds.core.MetadataDict(),
      supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    if not os.path.isdir(manual_dir):
      raise FileNotFoundError(
        f"manual directory {manual_dir} does not exist. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    class_names = self.info.features["label"].names
    index = {n: i for i, n in enumerate(class_names)}
    entries = [(p, index[c], c, s) for p, c, s in self._entries(manual_dir, class_names)]
    if not entries:
      raise FileNotFoundError(
        f"no images found under {manual_dir}. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    found = manifest.from_entries(
      entries, class_names, (self.MIN_SIZE, self.MIN_SIZE), splits.SplitFractions(), seed=0
    )
    for row in found.bad_files.itertuples():
      logging.warning("bad file left out of %s: %s: %s", self.name, row.path, row.problem)
    self.info.metadata["bad_files"] = found.bad_files.to_dict("records")
    generators = {}
    for name in splits.SPLITS:
      rows = found.split(name)
      if rows.empty:  # TFDS refuses empty splits; only tiny datasets get here
        logging.warning(
          "%s: split %r is empty with %d sources", self.name, name, found.files["source"].nunique()
        )
      else:
        generators[name] = self._generate_examples(rows)
    return generators

  def _generate_examples(self, rows):
    for row in rows.itertuples():
      with open(row.path, "rb") as f:
        data = f.read()
      yield (
        row.image_id,
        dict(image=data, label=row.label, image_id=row.image_id, source=row.source),
      )


def _subfolders(path):
  return sorted(
    d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")
  )


def _require_dir(path, what):
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{what}: expected folder {path} is missing")
  return path


class TfjpegVision(_ManualImageBuilder):
  """VISION (Shullani et al., 2017): natural images of its camera models."""

  MIN_SIZE = 512
  MODELS_FILE = "models.txt"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the VISION dataset's natural images (https://lesc.dinfo.unifi.it/VISION/)
and place the device folders in the manual directory, as the dataset ships them:
  <manual_dir>/D01_Samsung_GalaxyS3Mini/images/nat/D01_I_nat_0001.jpg
  <manual_dir>/D02_Apple_iPhone4s/images/nat/...
  ...
(a parent folder `dataset/` holding them is also accepted). The class is the
camera model: the device folder name without its `Dxx_` prefix, so devices of
one model share a class. Only `images/nat` is read (not flat, not videos).
"""

  def _root(self, manual_dir):
    nested = os.path.join(manual_dir, "dataset")
    return nested if os.path.isdir(nested) else manual_dir

  def _class_names(self):
    # The models come from the device folders, seen only when building; a
    # prepared dataset restores them from its own metadata.
    return None

  def _models(self, manual_dir):
    if not os.path.isdir(manual_dir):
      return []
    return sorted({d.split("_", 1)[1] for d in _subfolders(self._root(manual_dir)) if "_" in d})

  def _split_generators(self, dl_manager):
    names = self._models(os.fspath(dl_manager.manual_dir))
    if not names:
      raise FileNotFoundError(
        f"no VISION device folders in {dl_manager.manual_dir}. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    self.info.features["label"].names = names
    return super()._split_generators(dl_manager)

  def _entries(self, manual_dir, class_names):
    root = self._root(manual_dir)
    for device in _subfolders(root):
      if "_" not in device:
        continue
      nat = _require_dir(os.path.join(root, device, "images", "nat"), f"VISION device {device}")
      for path in images.list_images(nat):
        yield path, device.split("_", 1)[1], os.path.splitext(os.path.basename(path))[0]


class TfjpegGan(_ManualImageBuilder):
  """CycleGAN generated images and their pristine sources (Marra et al., 2019)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Get the CycleGAN images of Marra et al., "Detection of GAN-generated fake images
over social networks" (MIPR 2018) / "Do GANs leave artificial fingerprints?"
(MIPR 2019), as real/fake pairs per CycleGAN translation, and lay them out as:
  <manual_dir>/<translation>/real/<name>.png     (e.g. horse2zebra/real/n02381460_1000.png)
  <manual_dir>/<translation>/fake/<name>.png     (the fake made from that real image)
A real image and the fake made from it share <name>, and therefore a split.
"""

  def _class_names(self):
    return ["real", "fake"]

  def _entries(self, manual_dir, class_names):
    translations = _subfolders(manual_dir)
    if not translations:
      raise FileNotFoundError(
        f"no translation folders in {manual_dir}. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      )
    for translation in translations:
      for name in class_names:
        folder = _require_dir(
          os.path.join(manual_dir, translation, name), f"CycleGAN translation {translation}"
        )
        for path in images.list_images(folder):
          stem = os.path.splitext(os.path.relpath(path, folder))[0]
          yield path, name, f"{translation}/{stem}"


# The paper does not list its 16 synsets. Default: the 10 of Imagenette plus 6
# classes of other kinds; override with `ImagenetConfig(synsets=...)`.
DEFAULT_SYNSETS = (
  "n01440764",
  "n02102040",
  "n02979186",
  "n03000684",
  "n03028079",
  "n03394916",
  "n03417042",
  "n03425413",
  "n03445777",
  "n03888257",
  "n01530575",
  "n02123045",
  "n02690373",
  "n02504458",
  "n04467665",
  "n02085620",
)


@dataclasses.dataclass
class ImagenetConfig(tfds.core.BuilderConfig):
  synsets: tuple = DEFAULT_SYNSETS


class TfjpegImagenet(_ManualImageBuilder):
  """A synset subset of a local ILSVRC2012 train copy (16 synsets by default)."""

  BUILDER_CONFIGS = [ImagenetConfig(name="default", description="16 synsets")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Point the manual directory at a local ILSVRC2012 training set, one folder per
synset as it unpacks from ILSVRC2012_img_train.tar:
  <manual_dir>/n01440764/n01440764_10026.JPEG
  ...
(a parent folder `train/` holding them is also accepted). Only the configured
synsets are read; the default 16 are in tfjpeg.data.tfds_builders.DEFAULT_SYNSETS.
"""

  def _class_names(self):
    return list(self.builder_config.synsets)

  def _entries(self, manual_dir, class_names):
    nested = os.path.join(manual_dir, "train")
    root = nested if os.path.isdir(nested) else manual_dir
    for synset in class_names:
      folder = _require_dir(os.path.join(root, synset), f"ImageNet synset {synset}")
      for path in images.list_images(folder):
        yield path, synset, os.path.splitext(os.path.basename(path))[0]


LSUN_CATEGORIES = (
  "airplane",
  "bicycle",
  "bird",
  "boat",
  "bottle",
  "bus",
  "car",
  "cat",
  "chair",
  "cow",
  "dining_table",
  "dog",
  "horse",
  "motorbike",
  "person",
  "potted_plant",
  "sheep",
  "sofa",
  "train",
  "tv-monitor",
)


class TfjpegLsun(_ManualImageBuilder):
  """The 20 LSUN object categories, from local exports of the LSUN databases."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    """\
Download the 20 LSUN object categories (https://www.yf.io/p/lsun, object
LMDBs), export each with the LSUN tools (`python data.py export <db>
--out_dir <manual_dir>/<category> --flat`) so that images lie in:
  <manual_dir>/airplane/<id>.webp (or .jpg)   ... one folder per category:
  """
    + ", ".join(LSUN_CATEGORIES)
    + """
Nested export folders are read recursively. Exported files are stored as they are.
"""
  )

  def _class_names(self):
    return list(LSUN_CATEGORIES)

  def _entries(self, manual_dir, class_names):
    for category in class_names:
      folder = _require_dir(os.path.join(manual_dir, category), f"LSUN category {category}")
      for path in images.list_images(folder):
        yield path, category, os.path.splitext(os.path.relpath(path, folder))[0]


BUILDERS = {
  "vision": TfjpegVision,
  "gan": TfjpegGan,
  "imagenet": TfjpegImagenet,
  "lsun": TfjpegLsun,
}

"""What a dataset is: shape, classes and the normalisation the reference code uses."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

FOLDER_FIELDS = ("fingerprint", "data_root", "image_size", "channels")  # an image folder's DatasetInfo.data_source
SOURCE_FIELDS = (*FOLDER_FIELDS, "variant")  # every key DatasetInfo.data_source may give
EMBEDDED_SUBSET = "subset"  # the variant of a built-in dataset read from the embedded subset in assets/


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    display_name: str
    channels: int
    image_size: int
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str = ""
    homepage: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"{self.name}: mean/std must have one value per channel")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def with_changes(self, **changes) -> "DatasetInfo":
        return replace(self, **changes)

    @property
    def fingerprint(self) -> str | None:
        """A digest of an image folder's pixels, labels and class names (None for the named datasets). Every
        folder is called 'folder', so the name alone would let one folder's ZCA or experts serve another."""
        return self.extra.get("fingerprint")

    @property
    def variant(self) -> str | None:
        """'subset' when a built-in dataset was read from the embedded subset in assets/ (CIFAR-10: 500 train / 100
        test images per class), None for the full data. A ZCA, experts or a network fitted on the subset must not
        serve the full data once it arrives under a data root."""
        return self.extra.get("variant")

    @property
    def data_source(self) -> dict:
        """What an artefact made from this data must carry beside the dataset's name so that other data of that
        name never reuses it: an image folder's fingerprint, path and size (which also find the folder again in
        another task or process), or the embedded subset's variant. Empty for the full named datasets, so their
        artefacts keep the keys they were stored under."""
        if self.fingerprint:
            return dict(zip(FOLDER_FIELDS, (self.fingerprint, self.extra.get("root"), self.image_size, self.channels)))
        return {"variant": self.variant} if self.variant else {}

    @property
    def data_key(self) -> str:
        """The name caches and artefacts are keyed by: the name, plus the fingerprint or variant where there is one."""
        mark = self.fingerprint or self.variant
        return f"{self.name}-{mark}" if mark else self.name


def variant_label(source: "dict | None") -> str:
    """' (embedded subset)' for an artefact's label when its data source is the embedded subset, else ''."""
    return " (embedded subset)" if source and source.get("variant") == EMBEDDED_SUBSET else ""


MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()
CIFAR100_CLASSES = tuple(CIFAR100_CLASSES)

# Normalisation constants as in the reference code (DatasetCondensation utils.get_dataset).
BUILTIN_INFOS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", "MNIST", 1, 28, 10, MNIST_CLASSES, (0.1307,), (0.3081,),
                         "Handwritten digits, 60,000 train / 10,000 test, 28×28 grey.", "http://yann.lecun.com/exdb/mnist/"),
    "fashionmnist": DatasetInfo("fashionmnist", "Fashion-MNIST", 1, 28, 10, FASHION_CLASSES, (0.2861,), (0.3530,),
                                "Zalando clothing, 60,000 train / 10,000 test, 28×28 grey.",
                                "https://github.com/zalandoresearch/fashion-mnist"),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10", 3, 32, 10, CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465),
                           (0.2023, 0.1994, 0.2010),
                           "Natural images in 10 classes, 50,000 train / 10,000 test, 32×32 RGB.",
                           "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "cifar100": DatasetInfo("cifar100", "CIFAR-100", 3, 32, 100, CIFAR100_CLASSES, (0.5071, 0.4866, 0.4409),
                            (0.2673, 0.2564, 0.2762),
                            "Natural images in 100 classes, 50,000 train / 10,000 test, 32×32 RGB.",
                            "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "svhn": DatasetInfo("svhn", "SVHN", 3, 32, 10, MNIST_CLASSES, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
                        "Street View house numbers, 73,257 train / 26,032 test, 32×32 RGB.",
                        "http://ufldl.stanford.edu/housenumbers/"),
}

ALIASES = {"fmnist": "fashionmnist", "fashion-mnist": "fashionmnist", "fashion_mnist": "fashionmnist",
           "cifar-10": "cifar10", "cifar_10": "cifar10", "cifar-100": "cifar100", "cifar_100": "cifar100",
           "imagefolder": "folder"}


def canonical_name(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)

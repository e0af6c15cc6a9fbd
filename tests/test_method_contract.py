"""The method contract v2: everything about a method on its class, a new method is one file.

(a) a method written as one file in a temporary package, found through DDCORE_PLUGINS, is listed by
`python -m ddcore methods` and distils and evaluates through the CLI with its declared augmentation;
(b) the Distill page offers it; (c) the plots give it its declared colour; (d) presets as data give
exactly the configs the old if/elif code gave; plus Requirement, PresetRule, the published-only
methods table and the one random-real baseline set.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from ddcore.data import get_dataset_info, load_dataset
from ddcore.methods import (
    METHODS,
    DistillMethod,
    MethodConfig,
    MissingArtefactsError,
    PluginError,
    PresetRule,
    Requirement,
    create_method,
    describe_method,
    known_methods,
    load_plugins,
    make_config,
    method_class,
)
from ddcore.methods.matching import get_loops
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "method_presets_0bb1ea8.json"
# Config fields added after the fixture was written, with the value that leaves a config as it was.
ADDED_SINCE_FIXTURE = {"net_width": 0}
PLUGIN_COLOUR = "#12A4B6"
PLUGIN_FAMILY = "plugin family"

PLUGIN_SOURCE = '''
"""A method in one file, outside ddcore: each iteration pulls every image towards its class's real mean."""
from dataclasses import dataclass

import torch

from ddcore.methods import DistillMethod, MethodConfig, PresetRule, register_method


@dataclass
class PullConfig(MethodConfig):
    """Defaults: ours (a test method)."""

    iterations: int = 50
    lr: float = 0.2
    batch: int = 16


@register_method
class PluginPull(DistillMethod):
    name = "{name}"
    title = "Plugin pull (a test method from a plugin)"
    family = "{family}"
    explanation = "Moves each synthetic image a step towards the mean of a batch of real images of its class."
    paper = "None: a test of the plugin contract"
    eval_augmentation = "dsa"
    colour = "{colour}"
    Config = PullConfig
    presets = ("quick", "paper", "tiny")
    preset_rules = (
        PresetRule("quick", {{"iterations": 5}}, "test: quick is five iterations"),
        PresetRule("tiny", {{"iterations": 2, "batch": 4}}, "test: tiny at IPC 1", max_ipc=1),
        PresetRule("*", {{"lr": 0.5}}, "test: CIFAR-10 everywhere", datasets=("cifar10",)),
    )

    def _step(self):
        g = self.rng()
        loss = 0.0
        with torch.no_grad():
            for c in range(self.info.num_classes):
                rows = slice(c * self.ipc, (c + 1) * self.ipc)
                diff = self.real_batch(c, self.config.batch, g).mean(0, keepdim=True) - self.images[rows]
                loss += float(diff.pow(2).mean())
                self.images[rows] += self.config.lr * diff
        return {{"loss": loss / self.info.num_classes}}
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The plugin package on disk: (directory for PYTHONPATH, module name, method name)."""
    root = tmp_path_factory.mktemp("plugins")
    tag = uuid.uuid4().hex[:8]
    package, name = f"ddplug_{tag}", f"plug{tag}"
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    (root / package / "mymethod.py").write_text(PLUGIN_SOURCE.format(name=name, family=PLUGIN_FAMILY,
                                                                     colour=PLUGIN_COLOUR))
    return root, f"{package}.mymethod", name


@pytest.fixture
def loaded(plugin):
    """The plugin imported in this process through load_plugins (as DDCORE_PLUGINS would), then removed
    again so other tests' method listings stay the built-in ones."""
    root, module, name = plugin
    sys.path.insert(0, str(root))
    try:
        assert load_plugins(module) == [module]
        yield name
    finally:
        if name in METHODS:
            METHODS.remove(name)
        for mod in [m for m in sys.modules if m == module or m.startswith(module.split(".")[0])]:
            del sys.modules[mod]
        sys.path.remove(str(root))


def cli(*args: str, plugin_root: Path, module: str, home: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{plugin_root}", "DDCORE_PLUGINS": module, "PATH": "/usr/bin:/bin",
           "DDCORE_OFFLINE": "1", "HOME": str(Path.home()), "OMP_NUM_THREADS": "1", "DDCORE_HOME": str(home)}
    if "DDCORE_CACHE" in os.environ:
        env["DDCORE_CACHE"] = os.environ["DDCORE_CACHE"]
    return subprocess.run([sys.executable, "-m", "ddcore", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


# ---------------------------------------------------------------------- (a) the CLI, in a fresh process
@pytest.mark.slow
def test_a_plugin_is_listed_and_distils_and_evaluates_with_its_augmentation(plugin, tmp_path) -> None:
    root, module, name = plugin
    out = cli("methods", plugin_root=root, module=module, home=tmp_path)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.split()[:1] == [name])
    assert PLUGIN_FAMILY in line and "quick, paper, tiny" in line and "evaluated with: dsa" in line
    assert {ln.split()[0] for ln in out.stdout.splitlines() if ln.strip()} >= {"dc", "dsa", "dm", "random", name}

    target, record = tmp_path / "plug.ddset", tmp_path / "eval.json"
    out = cli("distill", "--dataset", "mnist", "--method", name, "--ipc", "1", "--iterations", "2", "--device", "cpu",
              "--out", str(target), "--quiet", "--eval", "--eval-preset", "custom-e2-t200-auto", "--json", str(record),
              plugin_root=root, module=module, home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert target.exists() and "(2 iterations" in out.stdout and "convnet:" in out.stdout
    result = json.loads(record.read_text())
    assert result["method"] == name and result["config"]["augmentation"] == "dsa"  # declared, not the 'dc' default
    assert result["config"]["strategy"] == "color_crop_cutout_scale_rotate"  # DSA's MNIST strategy
    assert result["config"]["epochs"] == 2 and result["test_images"] == 200


def test_a_broken_plugin_is_reported_by_name(tmp_path) -> None:
    out = cli("methods", plugin_root=tmp_path, module="no_such_plugin_module", home=tmp_path)
    assert out.returncode != 0
    assert "DDCORE_PLUGINS names the method plugin 'no_such_plugin_module'" in out.stderr
    with pytest.raises(PluginError, match="'no_such_plugin_module', which failed to import: ModuleNotFoundError"):
        load_plugins("no_such_plugin_module")


# ---------------------------------------------------------------------- (b) the Distill page offers it
def test_b_the_distill_page_offers_the_plugin(loaded) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "distill.py"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    options = at.selectbox(key="distill_method").options  # labels: 'title (name)'
    assert f"Plugin pull (a test method from a plugin) ({loaded})" in options
    at.session_state["distill_method"] = loaded
    at.session_state["distill_ipc"] = 1
    at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    body = " ".join(m.value for m in at.markdown)
    assert "Plugin pull" in body and PLUGIN_FAMILY in body
    assert at.session_state["distill_preset"] == "quick"
    assert "Moves each synthetic image" in body


# ---------------------------------------------------------------------- (c) the plots give it its colour
def test_c_plots_use_the_declared_colour(loaded) -> None:
    from app import plots
    from ddcore.results import ResultRow, family_of

    assert plots.method_color(loaded) == PLUGIN_COLOUR and family_of(loaded) == PLUGIN_FAMILY
    rows = [ResultRow(key=f"k{ipc}", subject=f"run:{ipc}", kind="run", label=loaded, method=loaded, dataset="mnist",
                      ipc=ipc, architecture="convnet", train_architecture="convnet", preset="quick", n_seeds=1,
                      mean=50.0 + ipc, std=1.0) for ipc in (1, 10)]
    fig = plots.accuracy_vs_ipc(rows, "convnet").figure
    trace = next(t for t in fig.data if t.name and t.name.startswith(loaded.upper()))
    assert trace.line.color == PLUGIN_COLOUR


def test_colours_are_declared_or_stable_and_distinct() -> None:
    from app import plots

    assert plots.method_color("dm") == method_class("dm").colour
    assert plots.method_color("random") == "#616161" and plots.method_color("whole") == "#212121"
    assert plots.method_color("mtt") == describe_method("mtt").colour  # published-only: the table's colour
    undeclared = [m for m in known_methods() if not describe_method(m).colour]
    assert undeclared, "the published table has ids without a colour"
    colours = [plots.method_color(m) for m in undeclared]
    declared = {describe_method(m).colour for m in known_methods() if describe_method(m).colour}
    assert len(set(colours)) == len(colours) and not set(colours) & declared
    assert colours == [plots.method_color(m) for m in undeclared]  # the same every call
    assert plots.method_color("never-heard-of-it") == plots.method_color("never-heard-of-it")


# ---------------------------------------------------------------------- (d) presets as data
def test_presets_equal_the_old_code() -> None:
    """Every (method, dataset, IPC, preset) gives exactly the config the if/elif code of commit 0bb1ea8 gave.

    The expected configs are a frozen JSON fixture (tests/fixtures/method_presets_0bb1ea8.json) generated once
    from the OLD code, at commit 0bb1ea8, with this throwaway script (PYTHONPATH=. at the repository root):

        import json, subprocess
        from dataclasses import asdict
        from ddcore.data import get_dataset_info
        from ddcore.methods import method_class
        ipcs = [1, 2, 3, 5, 9, 10, 11, 12, 13, 15, 17, 20, 21, 25, 26, 30, 34, 35, 40, 45, 50, 52, 53, 60, 84,
                100, 150, 200]
        configs = {f"{m}/{ds}/{ipc}/{p}": asdict(method_class(m).default_config(get_dataset_info(ds), ipc, p))
                   for m in ("dc", "dsa", "dm", "random", "herding", "kcenter")
                   for ds in ("mnist", "fashionmnist", "cifar10") for ipc in ipcs
                   for p in method_class(m).presets}

    (then written one config per line). It covers IPC 1, 10 and 50 and every IPC where a rule changes."""
    frozen = json.loads(FIXTURE.read_text())
    assert frozen["commit"] == "0bb1ea8"
    checked = 0
    for key, expected in frozen["configs"].items():
        method, dataset, ipc, preset = key.split("/")
        got = asdict(method_class(method).default_config(get_dataset_info(dataset), int(ipc), preset))
        for added, neutral in ADDED_SINCE_FIXTURE.items():  # fields added later, at values that change nothing
            if added in got and added not in expected:
                assert got.pop(added) == neutral, (key, added)
        assert got == expected, key
        checked += 1
    combos = {(m, d, i, p) for m in ("dc", "dsa", "dm", "random", "herding", "kcenter")
              for d in ("mnist", "fashionmnist", "cifar10") for i in (1, 10, 50) for p in ("quick", "paper")}
    assert {f"{m}/{d}/{i}/{p}" for m, d, i, p in combos} <= set(frozen["configs"])
    assert checked == len(frozen["configs"]) == 1008


def test_dc_quick_inner_loop_is_a_fifth_of_get_loops_for_every_ipc() -> None:
    """The rule table equals the old formula max(1, get_loops(ipc)[1] // 5) beyond the fixture's IPCs too."""
    info = get_dataset_info("cifar10")
    for name in ("dc", "dsa"):
        for ipc in range(1, 301):
            config = make_config(name, info, ipc, "quick")
            expected = 0 if ipc == 1 else max(1, get_loops(ipc)[1] // 5)
            assert (config.inner_loop, config.iterations) == (expected, 100 if ipc == 1 else 15), (name, ipc)


def test_preset_rules_name_sources_and_unknown_presets_are_refused() -> None:
    info = get_dataset_info("mnist")
    for name in ("dc", "dsa", "dm", "random", "herding", "kcenter"):
        cls = method_class(name)
        names = ("live", "quick", "paper") if name == "dm" else ("quick", "paper")
        assert cls.preset_names() == names
        assert all(rule.source.strip() for rule in cls.preset_rules)
        with pytest.raises(ValueError, match=rf"has presets {', '.join(names)}, not 'fast'"):
            cls.default_config(info, 10, "fast")
    sources = method_class("dm").config_sources(info, 10, "quick")
    assert set(sources) == {"batch_real", "iterations", "lr_img"} and "94.7%" in sources["lr_img"]
    assert method_class("dm").config_sources(info, 10, "paper") == {}


def test_bad_declarations_fail_when_the_class_is_defined() -> None:
    with pytest.raises(ValueError, match="must name its source"):
        PresetRule("quick", {"iterations": 3}, " ")
    with pytest.raises(ValueError, match="does not have"):
        type("Bad", (DistillMethod,), {"preset_rules": (PresetRule("quick", {"nope": 1}, "x"),)})
    with pytest.raises(ValueError, match="is not one of quick, paper"):
        type("Bad", (DistillMethod,), {"preset_rules": (PresetRule("fast", {"iterations": 1}, "x"),)})
    with pytest.raises(ValueError, match="eval_augmentation must be one of"):
        type("Bad", (DistillMethod,), {"eval_augmentation": "flip"})


def test_plugin_presets_and_metadata_in_process(loaded) -> None:
    cls = method_class(loaded)
    assert describe_method(loaded).family == PLUGIN_FAMILY and describe_method(loaded).registered
    assert known_methods().index(loaded) < known_methods().index("ftd")  # registered before published-only
    mnist, cifar = get_dataset_info("mnist"), get_dataset_info("cifar10")
    assert (make_config(loaded, mnist, 1, "tiny").iterations, make_config(loaded, mnist, 1, "tiny").batch) == (2, 4)
    assert make_config(loaded, mnist, 2, "tiny").iterations == 50  # max_ipc=1: the rule does not apply
    assert make_config(loaded, cifar, 3, "paper").lr == 0.5 and make_config(loaded, mnist, 3, "paper").lr == 0.2
    assert issubclass(cls.Config, MethodConfig)


# ---------------------------------------------------------------------- evaluation metadata, one source
def test_auto_augmentation_comes_from_the_class_or_the_published_table() -> None:
    from ddcore.evaluation import method_augmentation, paper_config
    from ddcore.results import family_of

    assert [method_augmentation(m) for m in ("dc", "dsa", "dm", "random", "herding", "kcenter")] == \
        ["dc", "dsa", "dsa", "dc", "dc", "dc"]
    assert [method_augmentation(m) for m in ("mtt", "tesla", "datm", "ftd", "cafe", "idm", "pad")] == ["dsa"] * 7
    assert method_augmentation("kip") == "dc" and method_augmentation("tensors") == "auto"
    resolve = paper_config().resolve
    assert resolve("mnist", "convnet", "mtt").augmentation == "dsa"
    assert resolve("cifar10", "convnet", "dc").augmentation == "none"  # get_daparam: no DC augmentation for ConvNet
    assert resolve("mnist", "convnet", "herding").augmentation == "dc"
    assert [family_of(m) for m in ("dc", "dm", "kcenter", "mtt", "kip", "dd", "whole", "unknown")] == \
        ["gradient matching", "distribution matching", "coreset", "trajectory", "kernel", "meta-learning",
         "whole dataset", "other"]


def test_published_method_table_covers_the_published_numbers() -> None:
    from ddcore import published

    for method in published.methods():  # every method id the published numbers use has a family
        info = describe_method(method)
        assert info is not None and info.family and info.source, method
    for method, row in published.published_methods().items():
        assert method not in METHODS, f"{method} is implemented: its class declares its metadata"
        assert row.source.strip()


# ---------------------------------------------------------------------- requirements and artefacts
def test_requirement_identity_and_artefacts_reach_the_method() -> None:
    a = Requirement.from_dict("expert-trajectories", {"dataset": "cifar10", "epochs": 50, "arch": "convnet"},
                              label="50 experts")
    b = Requirement("expert-trajectories", (("epochs", 50), ("arch", "convnet"), ("dataset", "cifar10")))
    assert a == b and hash(a) == hash(b) and a.key() == b.key() and len(a.key()) == 16
    assert a.params == (("arch", "convnet"), ("dataset", "cifar10"), ("epochs", 50))
    assert a.key() != Requirement.from_dict("expert-trajectories", {"dataset": "cifar10", "epochs": 20}).key()
    assert Requirement.from_dict("x", {"ipcs": [1, 10]}).params == (("ipcs", (1, 10)),)
    assert method_class("dm").requires(get_dataset_info("mnist"), 10, make_config("dm", get_dataset_info("mnist"), 10),
                                       "convnet") == ()
    data = load_dataset("mnist")
    m = create_method("random", data, 1, artefacts={"expert-trajectories": ["buffer"]})
    assert m.artefacts == {"expert-trajectories": ["buffer"]}
    assert create_method("random", data, 1).artefacts == {}


def test_a_method_with_a_prerequisite_gets_it_or_refuses_to_start() -> None:
    from ddcore.methods.random import RandomSubset

    class NeedsExperts(RandomSubset):  # not registered: constructed directly
        name = "needs-experts"

        @classmethod
        def requires(cls, info, ipc, config, architecture):
            return (Requirement.from_dict("expert-trajectories", {"dataset": info.name, "architecture": architecture},
                                          label=f"expert trajectories on {info.name}"),)

    data = load_dataset("mnist")
    (req,) = NeedsExperts.requires(data.info, 1, NeedsExperts.default_config(data.info, 1), "convnet")
    assert req.params == (("architecture", "convnet"), ("dataset", "mnist"))
    with pytest.raises(MissingArtefactsError, match="needs expert trajectories on mnist before it can start"):
        NeedsExperts(data, 1)
    m = NeedsExperts(data, 1, artefacts={req.kind: "the buffers"})
    assert m.artefacts[req.kind] == "the buffers"


# ---------------------------------------------------------------------- one random-real baseline set
@pytest.mark.parametrize("ipc,seed", [(1, 0), (3, 7)])
def test_random_real_set_is_the_random_methods_set(ipc, seed) -> None:
    from ddcore.methods.random import random_real_set

    data = load_dataset("mnist")
    m = create_method("random", data, ipc, seed=seed)
    m.step()
    ours, theirs = random_real_set(data, ipc, seed), m.synthetic()
    assert ours.meta.method == "random" and ours.meta.seed == seed and ours.meta.ipc == ipc
    assert ours.meta.config["indices"] == theirs.meta.config["indices"]
    assert torch.equal(ours.images, theirs.images) and torch.equal(ours.labels, theirs.labels)
    assert {k: v for k, v in ours.meta.config.items()} == theirs.meta.config
    assert random_real_set(data, ipc, seed + 1).meta.config["indices"] != ours.meta.config["indices"]


def test_coreset_selection_lives_in_the_methods_package() -> None:
    assert importlib.util.find_spec("ddcore.evaluation.features") is None
    from ddcore.methods import selection

    assert callable(selection.herding_order) and callable(selection.kcenter_order)

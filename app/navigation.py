"""The page list, in one place, so the app shell and the Home page's links agree."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


@dataclass(frozen=True)
class PageDef:
    file: str
    title: str
    icon: str
    blurb: str
    default: bool = False

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file

    @property
    def url_path(self) -> str:
        return Path(self.file).stem

    def st_page(self):
        import streamlit as st

        return st.Page(str(self.path), title=self.title, icon=self.icon, default=self.default,
                       url_path=None if self.default else self.url_path)

    def exists(self) -> bool:
        return self.path.is_file()


ALL_PAGES: dict[str, list[PageDef]] = {
    "Studio": [
        PageDef("home.py", "Home", ":material/home:", "What dataset distillation is, with real samples.", default=True),
        PageDef("distill.py", "Distill", ":material/science:", "Pick a dataset, a method and an IPC; watch the synthetic images evolve."),
        PageDef("playground.py", "Playground", ":material/scatter_plot:", "Distil points in the plane and watch a network's boundary follow them."),
        PageDef("gallery.py", "Gallery", ":material/photo_library:", "Browse stored runs, open one, download its images and set file."),
        PageDef("compare.py", "Compare", ":material/compare:", "Put 2–4 runs side by side, rows aligned by class."),
        PageDef("data.py", "Your data", ":material/upload:", "Upload a zip of your own images, or import a set file."),
    ],
    "Analyse": [
        PageDef("evaluate.py", "Evaluate", ":material/bar_chart:", "Cross-architecture accuracy, accuracy against IPC, papers' numbers."),
        PageDef("board.py", "Benchmark board", ":material/leaderboard:", "Method × dataset × IPC with fair baselines and DD-Ranking's scores."),
        PageDef("sweep.py", "Sweeps", ":material/grid_view:", "A grid of methods × datasets × IPCs × seeds, here or on a Ray cluster."),
        PageDef("privacy.py", "Privacy", ":material/shield_person:", "Attack networks trained on distilled data: does it leak membership?"),
        PageDef("continual.py", "Continual learning", ":material/timeline:", "Classes arrive in steps; a small memory is all a learner keeps."),
        PageDef("nas.py", "Architecture search", ":material/account_tree:", "Do distilled sets rank ConvNet variants as the whole data does?"),
    ],
}

# Only the pages that exist in this build are shown (later issues add more).
PAGES: dict[str, list[PageDef]] = {s: [p for p in ps if p.exists()] for s, ps in ALL_PAGES.items()}
PAGES = {s: ps for s, ps in PAGES.items() if ps}


def page(file: str):
    """The st.Page of one of the app's pages, for st.page_link / st.switch_page from any page.

    (A bare "pages/x.py" path resolves against app/, where main.py lives, and raises
    StreamlitPageNotFoundError.)
    """
    for pages in PAGES.values():
        for p in pages:
            if p.file == file:
                return p.st_page()
    raise KeyError(f"no page {file!r} in this build")

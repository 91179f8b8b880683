"""The atom atlas: its data (atoms, documents, steering curves), its escaping, and the page itself in a
real headless browser (Debian's chromium driven over the DevTools protocol): it loads from disk with no
console error and no network request, lists every atom, and its search, sort and details work.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import fake_results as fake
import pytest

from gatoms.build import paths
from gatoms.build.store import ArtifactError, StepStore
from gatoms.method.gradients import RowIndex
from gatoms.report import atlas
from gatoms.report.results import load_results

PROFILE = "fake"


@pytest.fixture
def fake_profile(tmp_artifacts):
    fake.write_profile(PROFILE)
    return tmp_artifacts


# ---- data -----------------------------------------------------------------------------------------------
def test_atlas_data_lists_every_atom_with_its_documents(fake_profile):
    data = atlas.atlas_data(load_results(PROFILE))
    assert [a["atom"] for a in data["atoms"]] == [row[1] for row in fake.ATOMS]
    assert data["families"] == sorted(fake.FAMILIES)
    docs = fake.documents()
    for a, row in zip(data["atoms"], fake.ATOMS):
        assert a["coherence"] == row[2] and a["active_docs"] == row[3] and a["description"] == row[6]
        assert a["docs"] == row[7]
        for i in a["docs"]:
            assert data["docs"][str(i)]["prompt"] == docs[i].prompt
            assert data["docs"][str(i)]["family"] == docs[i].family


def test_steering_curves_are_the_inviting_rates_of_the_steered_atoms(fake_profile):
    data = atlas.atlas_data(load_results(PROFILE))
    by_atom = {a["atom"]: a for a in data["atoms"]}
    steered = {b: m.atom for b, m in fake.METRICS["06_steering"].behaviors.items()}
    for atom_id, a in by_atom.items():
        expected = sorted(b for b, at in steered.items() if at == atom_id)
        assert sorted(c["behavior"] for c in a["steering"]) == expected
    for behavior, atom_id in steered.items():
        (c,) = [c for c in by_atom[atom_id]["steering"] if c["behavior"] == behavior]
        truth = fake.STEERING[behavior]
        assert [p["alpha"] for p in c["points"]] == sorted(truth)
        for p in c["points"]:
            flags = truth[p["alpha"]]
            assert (p["k"], p["n"]) == (sum(flags), len(flags))  # controls and dev prompts excluded
            assert p["lo"] <= p["rate"] <= p["hi"] and p["intact"] is True
        m = fake.METRICS["06_steering"].behaviors[behavior]
        assert c["verdict"] == m.verdict and c["alpha_star"] == m.alpha


def test_long_documents_are_clipped():
    assert atlas.clip("abc", 5) == "abc"
    assert atlas.clip("x" * 12, 5) == "xxxxx … [7 more characters]"


def test_documents_follow_the_row_index_of_the_extraction(fake_profile):
    """Gradient row i is the document 01_extract's row index names at i, not line i of train.jsonl; a row
    index naming a document train.jsonl lacks is an error, never a silent relabelling."""
    store = StepStore(PROFILE, "01_extract")
    order = [f"d{i:03d}" for i in reversed(range(fake.N_DOCS)) if i != 7]  # one document excluded
    n = len(order)
    RowIndex(order, [None] * n, [None] * n, [1] * n, [1] * n).write(store.path(paths.ROWS))
    docs = atlas.read_documents(PROFILE)
    assert len(docs) == fake.N_DOCS - 1
    assert docs[0]["id"] == f"d{fake.N_DOCS - 1:03d}"
    assert all(docs[i]["id"] == order[i] for i in docs)
    RowIndex(["d000", "nope"], [None] * 2, [None] * 2, [1] * 2, [1] * 2).write(store.path(paths.ROWS))
    with pytest.raises(ArtifactError, match="make extract"):
        atlas.read_documents(PROFILE)
    store.path(paths.ROWS).unlink()
    with pytest.raises(FileNotFoundError, match="make extract"):
        atlas.read_documents(PROFILE)


def test_no_atom_table_names_the_make_target(tmp_artifacts):
    fake.write_profile(PROFILE, steps=paths.STEPS[:3])
    with pytest.raises(ArtifactError, match=r"make coherence PROFILE=fake"):
        atlas.atlas_data(load_results(PROFILE))


def test_page_is_self_contained_and_escapes_the_data(fake_profile):
    out = atlas.write_atlas(PROFILE)
    html = out.read_text(encoding="utf-8")
    assert out == paths.atlas_file(PROFILE)
    # The only URL is the SVG namespace; nothing is loaded from anywhere.
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(link|img|iframe)\b", html) and "src=" not in html
    # Data can't close the script tag: the tricky prompt is embedded with "</" escaped.
    assert html.count("</script>") == 2
    assert "alert" in html and '<script>alert' not in html
    payload = html.split('id="atlas-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(payload)["docs"]["4"]["prompt"] == fake.TRICKY
    assert atlas.PLACEHOLDER_DATA not in html and atlas.PLACEHOLDER_TITLE not in html


def test_write_atlas_is_deterministic(fake_profile):
    first = atlas.write_atlas(PROFILE).read_bytes()
    assert atlas.write_atlas(PROFILE).read_bytes() == first


# ---- the page in a real browser -------------------------------------------------------------------------
def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """Headless chromium with a DevTools websocket to one page (a tiny CDP client over tornado)."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             "--remote-debugging-port=0"]

    def __init__(self, binary: str, profile_dir: str):
        # its own process group, so closing it ends every helper process chromium started
        self.proc = subprocess.Popen([binary, *self.FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        port_file = Path(profile_dir) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.poll() is not None else ""
                self.close()
                raise RuntimeError(f"chromium did not start its DevTools endpoint: {err}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        self.ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        self.events: list[dict] = []
        self._id = 0
        self.ws = None

    async def connect(self):
        from tornado.websocket import websocket_connect

        self.ws = await websocket_connect(self.ws_url, max_message_size=64 * 1024 * 1024)

    async def _read(self, timeout: float = 30) -> dict:
        msg = await asyncio.wait_for(self.ws.read_message(), timeout)
        if msg is None:
            raise RuntimeError("DevTools connection closed")
        return json.loads(msg)

    async def call(self, method: str, **params):
        self._id += 1
        me = self._id
        await self.ws.write_message(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            m = await self._read()
            if m.get("id") == me:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    async def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(await self._read(max(0.1, deadline - time.monotonic())))

    async def js(self, expression: str):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"page JavaScript failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and log errors seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails']}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}")
            elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait()


def open_in_browser(html: Path, check) -> None:
    """Load ``html`` from disk in headless chromium and run ``check(browser)`` (a coroutine) on it."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed and could not be installed here; `make test` installs it "
                    "with `apt-get install -y chromium` (needs root and Debian's package registry)")
    with tempfile.TemporaryDirectory(prefix="gatoms-chromium-") as profile_dir:
        browser = Browser(binary, profile_dir)
        try:
            async def run():
                await browser.connect()
                try:
                    for domain in ("Runtime", "Log", "Network", "Page"):
                        await browser.call(f"{domain}.enable")
                    await browser.call("Page.navigate", url=html.resolve().as_uri())
                    await browser.wait_event("Page.loadEventFired")
                    await browser.js("new Promise(r => setTimeout(r, 300))")
                    await check(browser)
                    assert browser.problems() == []
                    assert [u for u in browser.requests() if not u.startswith(("file:", "data:"))] == []
                finally:
                    browser.ws.close()

            asyncio.run(run())
        finally:
            browser.close()


VISIBLE = "[...document.querySelectorAll('#atoms tbody tr.atom')].filter(r => !r.hidden).map(r => +r.dataset.atom)"


def search_js(text: str, docs: bool = False) -> str:
    return (f"(() => {{ const s = document.getElementById('search'); s.value = {json.dumps(text)};"
            f" document.getElementById('search-docs').checked = {str(docs).lower()};"
            f" s.dispatchEvent(new Event('input')); return {VISIBLE}; }})()")


def test_atlas_in_headless_chromium(fake_profile):
    out = atlas.write_atlas(PROFILE)
    all_ids = [row[1] for row in fake.ATOMS]
    coh = {row[1]: row[2] for row in fake.ATOMS}

    async def check(b: Browser):
        assert await b.js("document.title") == f"Atom atlas — {PROFILE}"
        assert await b.js(VISIBLE) == all_ids
        assert await b.js("document.getElementById('count').textContent") == f"showing {len(all_ids)} of {len(all_ids)} atoms"
        assert await b.js("document.scripts.length") == 2  # the data did not inject a script
        # search: atom fields (family, description, #id), all terms must match, documents on request
        assert await b.js(search_js("arithmetic")) == [5, 3]
        assert await b.js("document.getElementById('count').textContent") == "showing 2 of 8 atoms"
        assert await b.js(search_js("ZEBRA")) == [3]
        assert await b.js(search_js("#7")) == [7]
        assert await b.js(search_js("code mixed")) == [0]
        assert await b.js(search_js("alert")) == []
        assert await b.js("document.getElementById('empty').hidden") is False
        assert await b.js(search_js("alert", docs=True)) == [7]  # document 4 is among atom 7's top docs
        assert await b.js(search_js("")) == all_ids
        # sort by coherence, ascending then descending (ties keep rank order)
        await b.js("document.querySelector('th[data-key=coherence]').click()")
        assert await b.js(VISIBLE) == sorted(all_ids, key=lambda a: (coh[a], all_ids.index(a)))
        await b.js("document.querySelector('th[data-key=coherence]').click()")
        assert await b.js(VISIBLE) == sorted(all_ids, key=lambda a: (-coh[a], all_ids.index(a)))
        # details: top documents (the tricky one as text) and the steering curve of a steered atom
        detail = await b.js("""(() => { const r = document.getElementById('atom-7'); r.click();
            const d = r.nextElementSibling;
            return {hidden: d.hidden, docs: d.querySelectorAll('.doc').length,
                    match: d.querySelectorAll('.doc.match').length, text: d.textContent,
                    svgs: d.querySelectorAll('svg').length, points: d.querySelectorAll('svg circle').length}; })()""")
        assert detail["hidden"] is False and detail["docs"] == 4 and detail["svgs"] == 1
        assert detail["points"] == len(fake.STEERING["bullets"])
        assert detail["match"] == sum(fake.documents()[i].family == "code" for i in (1, 4, 7, 10))
        assert fake.TRICKY in detail["text"]
        assert await b.js("document.getElementById('atom-5').nextElementSibling.querySelectorAll('svg').length") == 0

    open_in_browser(out, check)


def test_smoke_atlas_in_headless_chromium(smoke_step, smoke_tree, monkeypatch):
    """The atlas of a real (smoke) run: every atom of the atom table listed, no console error."""
    smoke_step("06_steering")
    monkeypatch.setenv("GATOMS_ARTIFACTS", str(smoke_tree / "artifacts"))
    monkeypatch.setenv("GATOMS_FIGURES", str(smoke_tree / "figures"))
    out = atlas.write_atlas("smoke")
    table = load_results("smoke").atom_table
    steered = {m["atom"] for m in StepStore.read("smoke", "06_steering").metrics()["behaviors"].values()}  # raw JSON

    async def check(b: Browser):
        assert sorted(await b.js(VISIBLE)) == sorted(r.atom for r in table)
        n = await b.js("document.querySelectorAll('tr.atom td .steer').length")
        assert n >= len(steered) > 0

    open_in_browser(out, check)


def test_committed_atlas_opens_in_headless_chromium():
    """The atlas readers open (figures/tiny/atlas.html, committed): no console error, every atom listed."""
    committed = Path(__file__).resolve().parents[2] / "figures" / "tiny" / "atlas.html"
    if not committed.exists():
        pytest.skip("figures/tiny/atlas.html has not been generated yet (`make paper`)")
    payload = committed.read_text(encoding="utf-8").split('id="atlas-data">', 1)[1].split("</script>", 1)[0]
    atoms = [a["atom"] for a in json.loads(payload)["atoms"]]

    async def check(b: Browser):
        assert sorted(await b.js(VISIBLE)) == sorted(atoms)

    open_in_browser(committed, check)

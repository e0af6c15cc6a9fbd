"""Streamlit protocol clients: sessions that do what a browser tab does to the server, without drawing anything.

Why: on this 2-core machine 20 headless Chromium tabs cost far more CPU than the server work they cause (a
classroom's browsers run on the students' own machines), so "what do 20 watching tabs cost the job" cannot be
measured with real browsers here. Each client here opens the app's websocket (`/_stcore/stream`, subprotocol
`streamlit`), asks for a page as the frontend does (`BackMsg.rerun_script`), re-runs every fragment at the interval
the server asks for (`ForwardMsg.auto_rerun`: how `st.fragment(run_every=...)` works: the browser keeps the timer),
and downloads every image the page shows (`/media/...`), as a browser would.

    python -m benchmarks.stclient --url http://127.0.0.1:8501 --page distill --query run=ID --sessions 20 --seconds 60

prints one JSON object: per session, seconds to the first image, images fetched (and how many were new to it: a new
live frame is a new image URL), fragment reruns sent, the
intervals each fragment was given in turn, and whether a live caption (`(live)`) was seen.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


def _texts(element) -> list[str]:
    """The visible text an element carries (markdown, captions, image captions)."""
    out = []
    kind = element.WhichOneof("type")
    if kind == "markdown":
        out.append(element.markdown.body)
    elif kind == "imgs":
        out += [img.caption for img in element.imgs.imgs]
    return out


async def session(base: str, page: str, query: str, seconds: float, stats: dict) -> None:
    from websockets.asyncio.client import connect

    ws_url = base.replace("http://", "ws://") + "/_stcore/stream"
    start = time.monotonic()
    timers: dict[str, asyncio.Task] = {}
    page_hash = ""
    stats.update(first_image_s=None, images=0, new_images=0, reruns=0, live_seen=False, messages=0, errors=0,
                 intervals={})
    shown: set[str] = set()  # image URLs this session has received (a new live frame is a new URL)

    async with connect(ws_url, subprotocols=["streamlit"], max_size=2**26) as ws:
        async def rerun(fragment_id: str = "") -> None:
            msg = BackMsg(rerun_script=ClientState(query_string=query, page_name=page, page_script_hash=page_hash,
                                                   fragment_id=fragment_id, is_auto_rerun=bool(fragment_id)))
            await ws.send(msg.SerializeToString())
            stats["reruns"] += bool(fragment_id)

        async def every(interval: float, fragment_id: str) -> None:
            while True:
                await asyncio.sleep(interval)
                await rerun(fragment_id)

        async def fetch(url: str) -> None:
            try:
                await asyncio.to_thread(lambda: urllib.request.urlopen(base + url, timeout=30).read())
                stats["images"] += 1
                if stats["first_image_s"] is None:
                    stats["first_image_s"] = round(time.monotonic() - start, 2)
            except OSError:
                stats["errors"] += 1

        await rerun()
        deadline = start + seconds
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            stats["messages"] += 1
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                page_hash = msg.new_session.page_script_hash or page_hash
            elif kind == "page_info_changed" and not page_hash:
                pass
            elif kind == "auto_rerun":  # as the frontend does: a new interval re-arms that fragment's timer
                fid, interval = msg.auto_rerun.fragment_id, max(0.05, msg.auto_rerun.interval)
                if stats["intervals"].get(fid, [None])[-1] != interval:
                    if fid in timers:
                        timers.pop(fid).cancel()
                    timers[fid] = asyncio.create_task(every(interval, fid))
                    stats["intervals"].setdefault(fid, []).append(interval)
            elif kind == "stop_auto_rerun":  # as the frontend does: those fragments' timers end
                for fid in msg.stop_auto_rerun.fragment_ids:
                    task = timers.pop(fid, None)
                    if task is not None:
                        task.cancel()
                    stats["intervals"].get(fid, []).append(None)  # a later declaration re-arms it
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if element.WhichOneof("type") == "imgs":
                    for img in element.imgs.imgs:
                        if img.url.startswith("/"):
                            stats["new_images"] += img.url not in shown
                            shown.add(img.url)
                            asyncio.create_task(fetch(img.url))
                stats["live_seen"] = stats["live_seen"] or any("(live)" in t for t in _texts(element))
        for task in timers.values():
            task.cancel()


async def run_all(base: str, page: str, query: str, sessions: int, seconds: float) -> list[dict]:
    stats = [{} for _ in range(sessions)]
    tasks = []
    for i in range(sessions):
        tasks.append(asyncio.create_task(session(base, page, query, seconds, stats[i])))
        await asyncio.sleep(0.2)  # tabs opened one after another, as a class does
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for s, r in zip(stats, results):
        if isinstance(r, BaseException):
            s["failed"] = f"{type(r).__name__}: {r}"
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--page", default="distill")
    parser.add_argument("--query", default="")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run_all(args.url, args.page, args.query, args.sessions, args.seconds))))


if __name__ == "__main__":
    main()

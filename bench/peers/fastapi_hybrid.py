"""The seed article's FastAPI hybrid endpoint, made fair for a benchmark.

As in the article, GET /hybrid/notifications asks the Node.js realtime service (bench/peers/realtime.js) for the
realtime list and reads the history itself, and answers {"realtime", "historical", "server"}. Unlike the article's
sketch, which opens a new httpx.AsyncClient per request, asks the two sources one after the other and returns fixed
history, this one keeps one client (keep-alive connection pool) per process, reads the history page from Redis with the
same Lua script as notigate's history-svc (one round trip, redis.asyncio), asks both sources at once, merges them as
notigate does, and skips FastAPI's jsonable_encoder by returning a JSONResponse.

Run with Debian's uvicorn and python3 (/usr/bin/python3: the packages are Debian's), e.g.
  REDIS_URL=redis://127.0.0.1:6379 REALTIME_URL=http://127.0.0.1:3001 \
    /usr/bin/python3 -m uvicorn fastapi_hybrid:app --app-dir bench/peers --workers 2 --loop uvloop --http httptools
"""

import asyncio
import os
import re
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse

PAGE_LUA = (Path(__file__).parent / "page.lua").read_text()
PAGE_LIMIT = 20  # notigate's default page size
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SERVER = "Python-Node hybrid (FastAPI + Node.js realtime service)"

app = FastAPI()
state = {}


@app.on_event("startup")
async def startup():
    state["http"] = httpx.AsyncClient(
        base_url=os.environ["REALTIME_URL"],
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
        timeout=httpx.Timeout(30.0),
    )
    redis = aioredis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    state["redis"] = redis
    state["page"] = redis.register_script(PAGE_LUA)


@app.on_event("shutdown")
async def shutdown():
    await state["http"].aclose()
    await state["redis"].close()


def parse_page(user_id, reply):
    """The page script's reply {unread, more, n, n unread ids, record, ...}, records "id\tts\tkind\tmessage"."""
    n = int(reply[2])
    unread = {int(x) for x in reply[3 : 3 + n]}
    items = []
    for rec in reply[3 + n :]:
        sid, ts, kind, message = rec.split("\t", 3)
        items.append(
            {
                "id": int(sid),
                "user_id": user_id,
                "message": message,
                "kind": kind,
                "ts": int(ts),
                "read": int(sid) not in unread,
            }
        )
    return int(reply[1]) == 1, items


def merge(realtime, more, page):
    """gateway/merge.c with before = 0."""
    lower = page[-1]["id"] if more and page else 0
    out_rt, out_hist, j = [], [], 0
    for r in realtime:
        if r["id"] < lower:
            continue
        while j < len(page) and page[j]["id"] > r["id"]:
            out_hist.append(page[j])
            j += 1
        if j < len(page) and page[j]["id"] == r["id"]:
            if page[j]["read"]:
                out_hist.append(page[j])
                j += 1
                continue
            j += 1
        out_rt.append(r)
    out_hist.extend(page[j:])
    return out_rt, out_hist


async def get_realtime(user_id):
    response = await state["http"].get(f"/notifications/{user_id}", params={"limit": PAGE_LIMIT})
    response.raise_for_status()
    return response.json()


async def get_historical(user_id):
    reply = await state["page"](keys=[f"ng:u:{user_id}", f"ng:u:{user_id}:unread"], args=[user_id, "0", PAGE_LIMIT])
    return parse_page(user_id, reply)


@app.get("/hybrid/notifications")
async def get_notifications(user_id: str):
    if not USER_ID_RE.match(user_id):
        return JSONResponse({"error": {"code": "invalid_user_id", "message": "invalid user id"}}, status_code=400)
    try:
        realtime, (more, page) = await asyncio.gather(get_realtime(user_id), get_historical(user_id))
    except Exception as err:  # a source failed: say so, as the other peers do
        return JSONResponse({"error": {"code": "unavailable", "message": str(err)}}, status_code=503)
    rt, hist = merge(realtime, more, page)
    return JSONResponse({"realtime": rt, "historical": hist, "server": SERVER})


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}

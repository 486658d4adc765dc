"""The control centre: a status page (Jinja2) with the host's load (psutil), pushed over a
WebSocket; it asks the other services over HTTP (httpx)."""

from pathlib import Path

import httpx
import jinja2
import psutil
import websockets
from fastapi import FastAPI, WebSocket
from fastapi.responses import HTMLResponse

app = FastAPI(title="sutra-control")
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
)


@app.get("/healthz")
def healthz():
    return {"ok": True}


@app.get("/", response_class=HTMLResponse)
def index():
    page = templates.get_template("index.html")
    return page.render(cpu=psutil.cpu_percent(interval=None), client=httpx.__version__)


@app.websocket("/ws")
async def stream(socket: WebSocket):
    await socket.accept()
    await socket.send_json({"cpu": psutil.cpu_percent(interval=None), "ws": websockets.__version__})
    await socket.close()

"""Just enough SPDY/3.1 to be the server end of `kubectl port-forward`, as a kubelet is.

`kubectl port-forward` reaches a pod through the API server, which hands the connection on to
the node's kubelet (`/portForward/NAMESPACE/POD`) and then copies bytes both ways. The client
opens two streams per forwarded connection, `streamtype: error` and `streamtype: data`, with
the pod's `port` and a `requestid`; the kubelet answers each with SYN_REPLY, dials the pod's
port and copies DATA frames both ways; it ends both streams with FIN when either side closes.
Header blocks are zlib-compressed with SPDY/3's dictionary, one compression context per
direction for the whole connection. The Go client (spdystream) does no flow control, so none
is done here either: WINDOW_UPDATE and SETTINGS from the client are read and ignored.

Frame layouts are from the SPDY/3.1 draft (control: 1 bit, version 15, type 16, flags 8,
length 24; data: 0 bit, stream id 31, flags 8, length 24).
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Mapping

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL, RST_INTERNAL_ERROR = 5, 6

HEADER_DICTIONARY = (
    b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00"
    b"\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00"
    b"\x00\x00\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\raccept-ranges\x00\x00"
    b"\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00\rauthorization\x00\x00\x00\rcache-control"
    b"\x00\x00\x00\nconnection\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00"
    b"\x00\x10content-language\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location"
    b"\x00\x00\x00\x0bcontent-md5\x00\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type\x00\x00"
    b"\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00\x00"
    b"\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\x00\x00"
    b"\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\r"
    b"last-modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00"
    b"\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\x00\x00\x00\x05range\x00"
    b"\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00"
    b"\x00\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\nuser"
    b"-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-auth"
    b"enticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06status\x00\x00\x00\x06200 O"
    b"K\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00"
    b"\x00\x00\nset-cookie\x00\x00\x00\nkeep-alive\x00\x00\x00\x06origin10010120120220520630030"
    b"230330430530630740240540640740840941041141241341441541641750"
    b"2504505203 Non-Authoritative Information204 No Content301 Mo"
    b"ved Permanently400 Bad Request401 Unauthorized403 Forbidden4"
    b"04 Not Found500 Internal Server Error501 Not Implemented503 "
    b"Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    b"Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunk"
    b"ed,text/html,image/png,image/jpg,image/gif,application/xml,a"
    b"pplication/xhtml+xml,text/plain,text/javascript,publicprivat"
    b"emax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,ut"
    b"f-,*,enq=0."
)


class Closed(Exception):
    """The connection ended."""


class Session:
    """One SPDY connection over a socket-like object with ``recv`` and ``sendall``."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self.deflate = zlib.compressobj(zdict=HEADER_DICTIONARY)
        self.write_lock = threading.RLock()  # a header block is compressed and sent as one step
        self.buffer = b""

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                raise Closed()
            self.buffer += data
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def read_frame(self) -> tuple:
        """("control", type, flags, payload) or ("data", stream id, flags, payload)."""
        head = self._read(8)
        first, second = struct.unpack(">II", head)
        flags, length = second >> 24, second & 0xFFFFFF
        payload = self._read(length)
        if first & 0x80000000:
            return ("control", first & 0xFFFF, flags, payload)
        return ("data", first & 0x7FFFFFFF, flags, payload)

    def headers(self, block: bytes) -> dict[str, str]:
        raw = self.inflate.decompress(block)
        (count,) = struct.unpack(">I", raw[:4])
        at, out = 4, {}
        for _ in range(count):
            (size,) = struct.unpack(">I", raw[at : at + 4])
            name = raw[at + 4 : at + 4 + size].decode()
            at += 4 + size
            (size,) = struct.unpack(">I", raw[at : at + 4])
            out[name.lower()] = raw[at + 4 : at + 4 + size].decode()
            at += 4 + size
        return out

    def _header_block(self, headers: Mapping[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            for text in (name.lower().encode(), value.encode()):
                raw += struct.pack(">I", len(text)) + text
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def _send(self, frame: bytes) -> None:
        with self.write_lock:
            self.sock.sendall(frame)

    def _control(self, kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream: int, headers: Mapping[str, str] | None = None) -> None:
        with self.write_lock:  # compressed and sent in one step: the client inflates in order
            block = self._header_block(headers or {})
            self.sock.sendall(self._control(SYN_REPLY, 0, struct.pack(">I", stream) + block))

    def data(self, stream: int, payload: bytes, *, fin: bool = False) -> None:
        for start in range(0, max(len(payload), 1), 0xFFFFFF):
            chunk = payload[start : start + 0xFFFFFF]
            last = fin and start + 0xFFFFFF >= len(payload)
            header = struct.pack(">II", stream & 0x7FFFFFFF, ((FLAG_FIN if last else 0) << 24) | len(chunk))
            self._send(header + chunk)

    def rst(self, stream: int, status: int = RST_CANCEL) -> None:
        self._send(self._control(RST_STREAM, 0, struct.pack(">II", stream, status)))

    def ping(self, payload: bytes) -> None:
        self._send(self._control(PING, 0, payload))

    def goaway(self, last_stream: int = 0) -> None:
        self._send(self._control(GOAWAY, 0, struct.pack(">II", last_stream, 0)))

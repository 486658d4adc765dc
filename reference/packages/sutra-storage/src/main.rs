//! storage-server: the Sutra item store.
//!
//! A deliberately small HTTP/1.1 server built on the Rust standard library alone, so the
//! image can be compiled offline into one static binary and shipped `FROM scratch`.
//!
//! Every item is one file under `$STORAGE_PATH/items/<id>`, written to a temporary file,
//! fsynced and renamed over the old one (then the directory is fsynced), so a kill at any
//! moment leaves either the old or the new content, never a torn file. All items are
//! loaded into memory at start-up; reads never touch the disk.
//!
//! Must stay compatible with rustc 1.63 (Debian bookworm's toolchain used by the image).

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

const DEFAULT_HOST: &str = "0.0.0.0";
const DEFAULT_PORT: u16 = 50051;
const DEFAULT_PATH: &str = "/data";
const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_HEADER_LINE_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_ID_LEN: usize = 128;
/// A thread per connection is simple; the cap keeps a flood from exhausting memory.
const MAX_CONNECTIONS: usize = 256;
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);
const TEMP_SUFFIX: &str = ".tmp";

const USAGE: &str = "usage: storage-server [serve|healthcheck]

  serve        run the HTTP server (default)
  healthcheck  GET /health on 127.0.0.1:$STORAGE_PORT; exit 0 only on HTTP 200

environment:
  STORAGE_HOST  address to bind (default 0.0.0.0)
  STORAGE_PORT  port to listen on (default 50051)
  STORAGE_PATH  data directory (default /data); items live in $STORAGE_PATH/items
";

fn main() {
    let command = env::args().nth(1);
    match command.as_deref() {
        None | Some("serve") => serve(),
        Some("healthcheck") => process::exit(healthcheck()),
        Some("-h") | Some("--help") | Some("help") => print!("{}", USAGE),
        Some(other) => {
            eprintln!("storage-server: unknown command {:?}\n\n{}", other, USAGE);
            process::exit(2);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

struct Config {
    addr: SocketAddr,
    path: PathBuf,
}

fn env_or(name: &str, default: &str) -> String {
    match env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().to_string(),
        _ => default.to_string(),
    }
}

fn port_from_env() -> Result<u16, String> {
    let raw = env_or("STORAGE_PORT", &DEFAULT_PORT.to_string());
    raw.parse::<u16>()
        .map_err(|_| format!("STORAGE_PORT must be a port number, got {:?}", raw))
}

impl Config {
    fn from_env() -> Result<Config, String> {
        let host = env_or("STORAGE_HOST", DEFAULT_HOST);
        let port = port_from_env()?;
        // Parsed as an IP literal on purpose: name lookup would need NSS, which a static
        // binary in an empty image does not have.
        let ip = host
            .parse::<std::net::IpAddr>()
            .map_err(|_| format!("STORAGE_HOST must be an IP address, got {:?}", host))?;
        Ok(Config {
            addr: SocketAddr::new(ip, port),
            path: PathBuf::from(env_or("STORAGE_PATH", DEFAULT_PATH)),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------

struct Store {
    dir: PathBuf,
    items: RwLock<BTreeMap<String, String>>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Store {
    fn open(root: &Path) -> io::Result<Store> {
        let dir = root.join("items");
        fs::create_dir_all(&dir)?;
        let mut items = BTreeMap::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = match entry.file_name().into_string() {
                Ok(name) => name,
                Err(_) => {
                    eprintln!("storage-server: skipping non UTF-8 file name {:?}", path);
                    continue;
                }
            };
            if name.ends_with(TEMP_SUFFIX) {
                // Left behind by a write that was killed before its rename: the previous
                // version (if any) is still intact under the real name.
                let _ = fs::remove_file(&path);
                continue;
            }
            if !valid_id(&name) || !entry.file_type()?.is_file() {
                eprintln!("storage-server: skipping unexpected entry {:?}", path);
                continue;
            }
            match String::from_utf8(fs::read(&path)?) {
                Ok(content) => {
                    items.insert(name, content);
                }
                Err(_) => eprintln!("storage-server: skipping non UTF-8 item {:?}", path),
            }
        }
        Ok(Store {
            dir,
            items: RwLock::new(items),
        })
    }

    // A poisoned lock only means another thread panicked mid-request; the map itself is
    // always consistent because it is only changed after the disk write succeeded.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, String>> {
        self.items.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, String>> {
        self.items.write().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.read().len()
    }

    fn get(&self, id: &str) -> Option<String> {
        self.read().get(id).cloned()
    }

    /// Durably stores `content`; the in-memory map changes only once the disk agrees.
    /// Holding the write lock across the disk write serialises writers, which keeps the
    /// per-id temporary file name free of races.
    fn put(&self, id: &str, content: String) -> io::Result<()> {
        let mut items = self.write();
        let tmp = self.dir.join(format!("{}{}", id, TEMP_SUFFIX));
        {
            let mut file = File::create(&tmp)?;
            file.write_all(content.as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(id))?;
        self.sync_dir()?;
        items.insert(id.to_string(), content);
        Ok(())
    }

    fn delete(&self, id: &str) -> io::Result<bool> {
        let mut items = self.write();
        if !items.contains_key(id) {
            return Ok(false);
        }
        match fs::remove_file(self.dir.join(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.sync_dir()?;
        items.remove(id);
        Ok(true)
    }

    /// Makes renames and unlinks in the items directory durable.
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

struct Request {
    method: String,
    target: String,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    allow: Option<&'static str>,
}

impl Response {
    fn json(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
            allow: None,
        }
    }

    fn text(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
            allow: None,
        }
    }

    fn error(status: u16, message: &str) -> Response {
        let mut body = String::from("{\"error\":");
        push_json_string(&mut body, message);
        body.push('}');
        Response::json(status, body)
    }

    fn method_not_allowed(allow: &'static str) -> Response {
        let mut response = Response::error(405, "method not allowed");
        response.allow = Some(allow);
        response
    }

    fn no_content() -> Response {
        Response {
            status: 204,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            allow: None,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn write_response(stream: &mut TcpStream, response: &Response) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if let Some(allow) = response.allow {
        let _ = write!(head, "Allow: {}\r\n", allow);
    }
    head.push_str("\r\n");
    // One buffer, one write: avoids a Nagle delay between head and body.
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    stream.write_all(&bytes)?;
    stream.flush()
}

/// Why a request could not be read. `Closed` means the peer went away: nothing to answer.
enum ReadError {
    Closed,
    Reject { status: u16, message: &'static str },
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadError::Reject {
                status: 408,
                message: "timed out reading the request",
            },
            _ => ReadError::Closed,
        }
    }
}

fn reject(status: u16, message: &'static str) -> ReadError {
    ReadError::Reject { status, message }
}

/// Reads one CRLF- (or LF-) terminated line of at most MAX_HEADER_LINE_BYTES.
fn read_line(reader: &mut BufReader<TcpStream>) -> Result<Option<String>, ReadError> {
    let mut buf = Vec::new();
    let limit = (MAX_HEADER_LINE_BYTES + 2) as u64;
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if n as u64 >= limit {
            return Err(reject(431, "header line too long"));
        }
        return Err(ReadError::Closed);
    }
    while buf.last() == Some(&b'\n') || buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| reject(400, "request head is not UTF-8"))
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Request, ReadError> {
    let request_line = match read_line(reader)? {
        Some(line) => line,
        None => return Err(ReadError::Closed),
    };
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(reject(400, "malformed request line")),
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(reject(400, "unsupported HTTP version"));
    }

    let mut content_length: Option<usize> = None;
    let mut expect_continue = false;
    let mut headers = 0;
    loop {
        let line = match read_line(reader)? {
            Some(line) => line,
            None => return Err(ReadError::Closed),
        };
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(reject(431, "too many headers"));
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name.trim(), value.trim()),
            None => return Err(reject(400, "malformed header")),
        };
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| reject(400, "invalid Content-Length"))?;
            if content_length.map_or(false, |seen| seen != length) {
                return Err(reject(400, "conflicting Content-Length headers"));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(reject(
                411,
                "chunked bodies are not supported; send Content-Length",
            ));
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }

    let length = content_length.unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return Err(reject(413, "body exceeds 1 MiB"));
    }
    if expect_continue && length > 0 {
        // curl waits for this before sending bodies over 1 KiB.
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        body,
    })
}

/// Serves one request on one connection, then closes it (no keep-alive: simple and enough).
fn handle_connection(store: &Store, stream: TcpStream) {
    let started = Instant::now();
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".to_string());
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(e) => {
            eprintln!("storage-server: {}: cannot clone socket: {}", peer, e);
            return;
        }
    };
    let mut reader = BufReader::new(stream);

    let (label, response, body_unread) = match read_request(&mut reader) {
        Ok(request) => {
            let response = route(store, &request);
            (
                format!("{} {}", request.method, request.target),
                response,
                false,
            )
        }
        Err(ReadError::Closed) => return,
        Err(ReadError::Reject { status, message }) => {
            ("-".to_string(), Response::error(status, message), true)
        }
    };
    let sent = write_response(&mut writer, &response);
    if body_unread {
        // Closing a socket with unread input makes the kernel send RST, which can destroy
        // the error response before the client reads it. Drain a bounded amount first.
        let _ = writer.shutdown(Shutdown::Write);
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(1)));
        let _ = io::copy(
            &mut reader.by_ref().take(4 * MAX_BODY_BYTES as u64),
            &mut io::sink(),
        );
    }
    eprintln!(
        "{} {:?} {} {}B {}ms{}",
        peer,
        label,
        response.status,
        response.body.len(),
        started.elapsed().as_millis(),
        match sent {
            Ok(()) => String::new(),
            Err(e) => format!(" (write failed: {})", e),
        }
    );
}

fn route(store: &Store, request: &Request) -> Response {
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path, query),
        None => (request.target.as_str(), ""),
    };
    let method = request.method.as_str();
    match path {
        "/health" => match method {
            "GET" => Response::json(
                200,
                format!("{{\"status\":\"ok\",\"items\":{}}}", store.len()),
            ),
            _ => Response::method_not_allowed("GET"),
        },
        "/items" | "/items/" => match method {
            "GET" => list_items(store),
            _ => Response::method_not_allowed("GET"),
        },
        "/search" => match method {
            "GET" => search(store, query),
            _ => Response::method_not_allowed("GET"),
        },
        _ => match path.strip_prefix("/items/") {
            Some(id) => item(store, method, id, &request.body),
            None => Response::error(404, "not found"),
        },
    }
}

fn item(store: &Store, method: &str, id: &str, body: &[u8]) -> Response {
    const ALLOW: &str = "GET, PUT, DELETE";
    if !matches!(method, "GET" | "PUT" | "DELETE") {
        return Response::method_not_allowed(ALLOW);
    }
    if !valid_id(id) {
        return Response::error(400, "item id must match [A-Za-z0-9_-]{1,128}");
    }
    match method {
        "GET" => match store.get(id) {
            Some(content) => Response::text(200, content),
            None => Response::error(404, "no such item"),
        },
        "PUT" => {
            let content = match String::from_utf8(body.to_vec()) {
                Ok(content) => content,
                Err(_) => return Response::error(400, "body must be UTF-8 text"),
            };
            match store.put(id, content) {
                Ok(()) => {
                    let mut out = String::from("{\"id\":");
                    push_json_string(&mut out, id);
                    out.push('}');
                    Response::json(201, out)
                }
                Err(e) => {
                    eprintln!("storage-server: writing item {} failed: {}", id, e);
                    Response::error(500, "could not persist the item")
                }
            }
        }
        _ => match store.delete(id) {
            Ok(true) => Response::no_content(),
            Ok(false) => Response::error(404, "no such item"),
            Err(e) => {
                eprintln!("storage-server: deleting item {} failed: {}", id, e);
                Response::error(500, "could not delete the item")
            }
        },
    }
}

fn list_items(store: &Store) -> Response {
    let items = store.read();
    Response::json(200, items_json(items.iter()))
}

fn search(store: &Store, query: &str) -> Response {
    let mut needle: Option<String> = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "q" {
            match percent_decode(value) {
                Some(value) => needle = Some(value.to_lowercase()),
                None => return Response::error(400, "q is not valid percent-encoded UTF-8"),
            }
        }
    }
    let needle = match needle {
        Some(needle) => needle,
        None => return Response::error(400, "missing query parameter q"),
    };
    let items = store.read();
    let hits = items
        .iter()
        .filter(|(_, content)| content.to_lowercase().contains(&needle));
    Response::json(200, items_json(hits))
}

fn items_json<'a, I>(items: I) -> String
where
    I: Iterator<Item = (&'a String, &'a String)>,
{
    let mut out = String::from("[");
    for (i, (id, content)) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        push_json_string(&mut out, id);
        out.push_str(",\"content\":");
        push_json_string(&mut out, content);
        out.push('}');
    }
    out.push(']');
    out
}

/// Appends `s` as a JSON string literal (RFC 8259): quotes, backslashes and all control
/// characters escaped; everything else is valid UTF-8 and passes through.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Decodes application/x-www-form-urlencoded text; None on bad escapes or non UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                // from_str_radix alone would also accept a sign ("%+f").
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

/// Gives a connection slot back when the connection's thread ends (or never starts).
struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Exit at once on SIGTERM/SIGINT. Safe because every acknowledged write is already
/// fsynced and renamed into place; an interrupted one leaves only a temp file that the next
/// start removes. Without a handler, PID 1 in a container ignores SIGTERM and `docker stop`
/// has to wait for SIGKILL. Declared by hand: std links libc but exposes no signal API.
#[cfg(unix)]
fn exit_on_termination_signals() {
    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn _exit(status: i32) -> !;
    }
    extern "C" fn exit_now(_signum: i32) {
        // _exit is async-signal-safe; std's exit (atexit handlers, buffers) is not.
        unsafe { _exit(0) }
    }
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    unsafe {
        signal(SIGTERM, exit_now);
        signal(SIGINT, exit_now);
    }
}

#[cfg(not(unix))]
fn exit_on_termination_signals() {}

fn serve() {
    exit_on_termination_signals();
    let config = Config::from_env().unwrap_or_else(|e| {
        eprintln!("storage-server: {}", e);
        process::exit(2);
    });
    let store = Store::open(&config.path).unwrap_or_else(|e| {
        eprintln!(
            "storage-server: cannot open data directory {:?}: {}",
            config.path, e
        );
        process::exit(1);
    });
    let listener = TcpListener::bind(config.addr).unwrap_or_else(|e| {
        eprintln!("storage-server: cannot listen on {}: {}", config.addr, e);
        process::exit(1);
    });
    eprintln!(
        "storage-server: listening on {} with {} items from {:?}",
        config.addr,
        store.len(),
        config.path
    );

    let store = Arc::new(store);
    let active = Arc::new(AtomicUsize::new(0));
    for connection in listener.incoming() {
        let mut stream = match connection {
            Ok(stream) => stream,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning on the accept queue.
                eprintln!("storage-server: accept failed: {}", e);
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let slot = ConnectionSlot(Arc::clone(&active));
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = write_response(&mut stream, &Response::error(503, "server busy"));
            continue; // `slot` drops here and gives the count back
        }
        let store = Arc::clone(&store);
        let spawned = thread::Builder::new()
            .name("connection".to_string())
            .spawn(move || {
                let _slot = slot;
                handle_connection(&store, stream);
            });
        if let Err(e) = spawned {
            eprintln!("storage-server: cannot spawn a connection thread: {}", e);
        }
    }
}

/// Exit code for `storage-server healthcheck`: the image has no shell or curl, so the
/// binary probes itself.
fn healthcheck() -> i32 {
    let port = match port_from_env() {
        Ok(port) => port,
        Err(e) => {
            eprintln!("healthcheck: {}", e);
            return 2;
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match probe_health(addr) {
        Ok(status_line) => {
            if status_line.split(' ').nth(1) == Some("200") {
                0
            } else {
                eprintln!("healthcheck: unhealthy: {}", status_line.trim_end());
                1
            }
        }
        Err(e) => {
            eprintln!("healthcheck: {}: {}", addr, e);
            1
        }
    }
}

fn probe_health(addr: SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, HEALTHCHECK_TIMEOUT)?;
    stream.set_read_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    stream.set_write_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut status_line = String::new();
    BufReader::new(stream)
        .take(512)
        .read_line(&mut status_line)?;
    Ok(status_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("abc_DEF-123"));
        assert!(valid_id(&"a".repeat(128)));
        assert!(!valid_id(&"a".repeat(129)));
        assert!(!valid_id(""));
        assert!(!valid_id("a.b"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("x.tmp"));
    }

    #[test]
    fn json_escaping() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a+b%20c%C3%A9").as_deref(), Some("a b cé"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%+f"), None);
    }
}

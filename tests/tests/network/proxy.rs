//! A hostile TCP proxy on 127.0.0.1 between devices and a sync server.
//!
//! It reads each HTTP/1.1 request the device sends (request line, headers, a
//! `Content-Length` body), draws a [`Fault`] from its seeded generator, and acts on that one
//! request: forwards it on a fresh upstream connection (asking the server to close it after
//! the answer, so the answer is everything until the end of the stream), or drops, repeats,
//! delays, truncates, cuts or resets. The device's side keeps alive between requests when
//! the fault lets it. While the proxy is [`Proxy::set_down`], every connection is reset as
//! soon as it is accepted and every connection open is cut at its next request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Forwarded both ways untouched.
    Pass,
    /// The connection is closed before the request reaches the server.
    DropRequest,
    /// The server gets the request and answers; the device gets a closed connection.
    DropResponse,
    /// The server gets the request twice (one after the other); the device gets one answer.
    Duplicate,
    /// The server gets the request twice at once; the device gets one answer.
    DuplicateConcurrent,
    /// Held up to 300 ms before it reaches the server (another device's request may pass it).
    DelayRequest,
    /// The server answers at once; the answer is held up to 300 ms.
    DelayResponse,
    /// The answer's body is cut short and its `Content-Length` made to match: a complete
    /// HTTP message with a damaged body.
    TruncateBody,
    /// The answer's headers and part of its body arrive, then the connection closes.
    CutMidBody,
    /// The connection is reset (RST) before the request reaches the server.
    ResetBefore,
    /// The server gets the request; the device's connection is reset instead of answered.
    ResetAfter,
}

impl Fault {
    pub const ALL: [Fault; 11] = [
        Fault::Pass,
        Fault::DropRequest,
        Fault::DropResponse,
        Fault::Duplicate,
        Fault::DuplicateConcurrent,
        Fault::DelayRequest,
        Fault::DelayResponse,
        Fault::TruncateBody,
        Fault::CutMidBody,
        Fault::ResetBefore,
        Fault::ResetAfter,
    ];
}

/// A small deterministic generator (SplitMix64): the same seed, the same faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The proxy's shared state: where it forwards, how hostile it is, what it did.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    rng: Mutex<Rng>,
    /// Percent of requests that get a fault other than `Pass`.
    fault_percent: AtomicU64,
    down: AtomicBool,
    counts: Mutex<std::collections::BTreeMap<Fault, u64>>,
    n_refused: AtomicU64,
}

/// A running proxy; stops accepting when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub url: String,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    /// A proxy to the server at `upstream_url` (`http://127.0.0.1:port`), faults drawn from `seed`.
    pub async fn start(upstream_url: &str, seed: u64, fault_percent: u64) -> Proxy {
        let upstream: SocketAddr =
            upstream_url.trim_start_matches("http://").parse().expect("the server's address is ip:port");
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(Rng::new(seed)),
            fault_percent: AtomicU64::new(fault_percent),
            down: AtomicBool::new(false),
            counts: Mutex::default(),
            n_refused: AtomicU64::new(0),
        });
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = accepting.clone();
                tokio::spawn(async move {
                    if shared.down.load(Ordering::SeqCst) {
                        shared.n_refused.fetch_add(1, Ordering::Relaxed);
                        reset(client);
                        return;
                    }
                    // Errors only end this one connection: the device sees what it sees.
                    let _ = serve(&shared, client).await;
                });
            }
        });
        Proxy { url, shared, accept }
    }

    /// How many requests in 100 get a fault from now on (0: pass-through).
    pub fn set_fault_percent(&self, percent: u64) {
        self.shared.fault_percent.store(percent, Ordering::SeqCst);
    }

    /// Down: every connection is reset, at once or at its next request. Up: faults as set.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// How many requests got each fault so far.
    pub fn counts(&self) -> std::collections::BTreeMap<Fault, u64> {
        self.shared.counts.lock().expect("the counts").clone()
    }

    /// Connections and requests refused while down.
    pub fn n_refused(&self) -> u64 {
        self.shared.n_refused.load(Ordering::Relaxed)
    }
}

/// Serves one connection of a device, request by request, until a fault or the device ends it.
async fn serve(shared: &Shared, client: TcpStream) -> std::io::Result<()> {
    let mut buffered = Vec::new();
    loop {
        let Some(request) = read_request(&client, &mut buffered).await? else { return Ok(()) };
        if shared.down.load(Ordering::SeqCst) {
            shared.n_refused.fetch_add(1, Ordering::Relaxed);
            reset(client);
            return Ok(());
        }
        let (fault, delay_ms, cut_fraction) = {
            let mut rng = shared.rng.lock().expect("the generator");
            let fault = if rng.chance(shared.fault_percent.load(Ordering::SeqCst)) {
                *rng.pick(&Fault::ALL[1..])
            } else {
                Fault::Pass
            };
            (fault, rng.between(1, 300), rng.below(100))
        };
        *shared.counts.lock().expect("the counts").entry(fault).or_default() += 1;
        let response = match fault {
            Fault::DropRequest => return Ok(()),
            Fault::ResetBefore => {
                reset(client);
                return Ok(());
            }
            Fault::DelayRequest => {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                forward(shared.upstream, &request).await?
            }
            Fault::Duplicate => {
                forward(shared.upstream, &request).await?;
                forward(shared.upstream, &request).await?
            }
            Fault::DuplicateConcurrent => {
                let (first, second) =
                    tokio::join!(forward(shared.upstream, &request), forward(shared.upstream, &request));
                if cut_fraction % 2 == 0 { first? } else { second? }
            }
            _ => forward(shared.upstream, &request).await?,
        };
        match fault {
            Fault::DropResponse => return Ok(()),
            Fault::ResetAfter => {
                reset(client);
                return Ok(());
            }
            Fault::DelayResponse => {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                write_all(&client, &response.bytes).await?;
            }
            Fault::TruncateBody => {
                let body = &response.bytes[response.body_start..];
                let keep = body.len() * cut_fraction as usize / 100;
                let head = String::from_utf8_lossy(&response.bytes[..response.body_start]);
                let head: String = head
                    .split("\r\n")
                    .map(|line| {
                        if line.to_ascii_lowercase().starts_with("content-length:") {
                            format!("content-length: {keep}")
                        } else {
                            line.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\r\n");
                write_all(&client, head.as_bytes()).await?;
                write_all(&client, &body[..keep]).await?;
            }
            Fault::CutMidBody => {
                let body_len = response.bytes.len() - response.body_start;
                let end = response.body_start + body_len * cut_fraction as usize / 100;
                write_all(&client, &response.bytes[..end]).await?;
                return Ok(());
            }
            _ => write_all(&client, &response.bytes).await?,
        }
        if !response.keep_alive {
            return Ok(());
        }
    }
}

/// One request as the device sent it: its head (with `connection: close` for the server) and body.
struct Request {
    head: Vec<u8>,
    body: Vec<u8>,
}

/// One whole answer of the server, and where its body starts.
struct Response {
    bytes: Vec<u8>,
    body_start: usize,
    /// The device may send its next request on this connection (it had a `Content-Length`).
    keep_alive: bool,
}

/// Reads the next request from a device; `None` when it closed the connection between requests.
async fn read_request(client: &TcpStream, buffered: &mut Vec<u8>) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(at) = find(buffered, b"\r\n\r\n") {
            break at + 4;
        }
        if !read_more(client, buffered).await? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let content_length = header(&head, "content-length").and_then(|value| value.parse::<usize>().ok()).unwrap_or(0);
    while buffered.len() < head_end + content_length {
        if !read_more(client, buffered).await? {
            return Ok(None);
        }
    }
    let body = buffered[head_end..head_end + content_length].to_vec();
    buffered.drain(..head_end + content_length);
    // The server closes after answering, so the answer ends where the stream does.
    let mut rewritten: Vec<String> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .map(str::to_owned)
        .collect();
    rewritten.push("connection: close".into());
    let head = format!("{}\r\n\r\n", rewritten.join("\r\n")).into_bytes();
    Ok(Some(Request { head, body }))
}

/// Sends one request to the server on a connection of its own and reads the whole answer.
async fn forward(upstream: SocketAddr, request: &Request) -> std::io::Result<Response> {
    let server = TcpStream::connect(upstream).await?;
    write_all(&server, &request.head).await?;
    write_all(&server, &request.body).await?;
    let mut bytes = Vec::new();
    while read_more(&server, &mut bytes).await? {}
    let body_start = find(&bytes, b"\r\n\r\n")
        .map(|at| at + 4)
        .ok_or_else(|| std::io::Error::other("the server's answer has no end of headers"))?;
    let head = String::from_utf8_lossy(&bytes[..body_start]).into_owned();
    let keep_alive = header(&head, "content-length").is_some();
    // The device should not think the connection closes: the proxy decides that.
    let head: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    let mut rebuilt = format!("{}\r\n\r\n", head.join("\r\n")).into_bytes();
    let new_body_start = rebuilt.len();
    rebuilt.extend_from_slice(&bytes[body_start..]);
    Ok(Response { bytes: rebuilt, body_start: new_body_start, keep_alive })
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Reads what is there into `buffer`; false at the end of the stream.
async fn read_more(stream: &TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Closes with a reset (RST) rather than an orderly end of stream.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

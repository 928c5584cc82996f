//! Capture stage: where frames come from. Out: [`Frame`]s (capture time,
//! link type, bytes borrowed from libpcap's buffer) read one at a time.
//!
//! Two sources share everything downstream: saved captures (pcap or pcapng,
//! optionally gzip-compressed) read through libpcap, and live capture on an
//! interface. Files are checked before libpcap sees them so that a wrong
//! file gets a clear one-line error naming it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pcap::{Active, Capture, Offline};

use crate::exchange::Nanos;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: not a pcap or pcapng capture (starts with {magic})")]
    NotACapture { path: PathBuf, magic: String },
    #[error("{path}: empty file, not a capture")]
    Empty { path: PathBuf },
    #[error(
        "{path}: link type {linktype} is not supported (Ethernet, Linux cooked v1/v2, BSD loopback and raw IP are)"
    )]
    UnsupportedLink { path: PathBuf, linktype: i32 },
    #[error("{path}: truncated capture at byte {offset} (after {packets} packets): {reason}")]
    Truncated { path: PathBuf, offset: String, packets: u64, reason: String },
    #[error("{path}: {reason}")]
    Libpcap { path: PathBuf, reason: String },
    #[error("interface {interface}: {reason}")]
    Live { interface: String, reason: String },
    #[error(transparent)]
    Ebpf(#[from] crate::ebpf::EbpfError),
    #[error("--record {0}")]
    Record(#[from] crate::ebpf::record::RecordError),
}

/// One captured frame.
pub struct Frame<'a> {
    pub ts: Nanos,
    pub linktype: i32,
    pub data: &'a [u8],
}

/// A saved capture opened for reading, frame by frame.
pub struct CaptureFile {
    path: PathBuf,
    capture: Capture<Offline>,
    linktype: i32,
    /// Classic pcap: the exact file offset of the next record; pcapng has
    /// blocks of varying size, so only the packet count is known there.
    offset: Option<u64>,
    packets: u64,
    size: u64,
    inflater: Option<JoinHandle<Result<(), String>>>,
    /// The stdio buffer libpcap reads the file through. Declared after
    /// `capture` so that it is dropped after the capture (and its FILE).
    _read_buffer: Box<[u8]>,
}

/// libpcap reads a saved capture record by record with `fread`, through
/// stdio's default 4 KiB buffer: one `read(2)` per 4 KiB. A 1 MiB buffer
/// makes that one per MiB.
const READ_BUFFER: usize = 1 << 20;

unsafe extern "C" {
    fn pcap_fopen_offline_with_tstamp_precision(
        file: *mut libc::FILE,
        precision: libc::c_uint,
        errbuf: *mut libc::c_char,
    ) -> *mut libc::c_void;
}

/// Opens a capture on `fd` (taken over) through a stdio stream buffered in
/// `buffer`, which must outlive the returned capture.
fn open_buffered(fd: OwnedFd, buffer: &mut [u8]) -> Result<Capture<Offline>, String> {
    const PCAP_TSTAMP_PRECISION_NANO: libc::c_uint = 1;
    let raw_fd = fd.into_raw_fd();
    // SAFETY: `raw_fd` is ours alone; fdopen takes it over (on failure we
    // close it). setvbuf is called before any I/O on the new stream, with
    // a buffer the caller keeps alive for as long as the capture (libpcap
    // fcloses the stream when the capture is dropped).
    unsafe {
        let file = libc::fdopen(raw_fd, c"r".as_ptr());
        if file.is_null() {
            let error = std::io::Error::last_os_error();
            libc::close(raw_fd);
            return Err(error.to_string());
        }
        libc::setvbuf(file, buffer.as_mut_ptr().cast(), libc::_IOFBF, buffer.len());
        let mut errbuf = [0 as libc::c_char; 256];
        let handle = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf.as_mut_ptr());
        match std::ptr::NonNull::new(handle.cast()) {
            Some(handle) => Ok(Capture::from(handle)),
            None => {
                libc::fclose(file);
                Err(std::ffi::CStr::from_ptr(errbuf.as_ptr()).to_string_lossy().into_owned())
            }
        }
    }
}

const PCAP_MAGICS: [[u8; 4]; 4] =
    [[0xa1, 0xb2, 0xc3, 0xd4], [0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d], [0x4d, 0x3c, 0xb2, 0xa1]];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl CaptureFile {
    pub fn open(path: &Path) -> Result<CaptureFile, CaptureError> {
        let unreadable = |e: std::io::Error| CaptureError::Unreadable { path: path.into(), reason: e.to_string() };
        let mut file = File::open(path).map_err(unreadable)?;
        let size = file.metadata().map_err(unreadable)?.len();
        if file.metadata().map_err(unreadable)?.is_dir() {
            return Err(CaptureError::Unreadable { path: path.into(), reason: "is a directory".into() });
        }
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut file, &mut magic).map_err(unreadable)?;
        if got == 0 {
            return Err(CaptureError::Empty { path: path.into() });
        }
        let (fd, inflater, inner_magic) = if magic[..2] == GZIP_MAGIC {
            let (fd, handle, inner) = inflate_through_pipe(path).map_err(unreadable)?;
            (fd, Some(handle), inner)
        } else {
            drop(file);
            let file = File::open(path).map_err(unreadable)?;
            (OwnedFd::from(file), None, magic)
        };
        let is_pcap = PCAP_MAGICS.contains(&inner_magic);
        if !is_pcap && inner_magic != PCAPNG_MAGIC {
            let magic = inner_magic.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
            return Err(CaptureError::NotACapture { path: path.into(), magic });
        }
        let mut read_buffer = vec![0u8; READ_BUFFER].into_boxed_slice();
        let capture = open_buffered(fd, &mut read_buffer)
            .map_err(|reason| CaptureError::Libpcap { path: path.into(), reason })?;
        let linktype = capture.get_datalink().0;
        if !crate::decode::is_supported_linktype(linktype) {
            return Err(CaptureError::UnsupportedLink { path: path.into(), linktype });
        }
        Ok(CaptureFile {
            path: path.into(),
            capture,
            linktype,
            offset: is_pcap.then_some(24),
            packets: 0,
            size,
            inflater,
            _read_buffer: read_buffer,
        })
    }

    /// Size of the file on disk (compressed size for `.gz`).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Next frame, `Ok(None)` at the end, or why reading stopped.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match detach(self.capture.next_packet()) {
            Ok((header, data)) => {
                self.packets += 1;
                if let Some(offset) = self.offset.as_mut() {
                    *offset += 16 + header.caplen as u64;
                }
                let ts = nanos(header.ts.tv_sec as Nanos, header.ts.tv_usec as Nanos);
                // SAFETY: see `detach`.
                Ok(Some(Frame { ts, linktype: self.linktype, data: unsafe { &*data } }))
            }
            Err(pcap::Error::NoMorePackets) => self.finish_inflater().map(|_| None),
            Err(e) => {
                self.finish_inflater()?;
                Err(self.classify(e))
            }
        }
    }

    /// Bytes of the (uncompressed) capture read so far, when known.
    pub fn position(&self) -> Option<u64> {
        self.offset
    }

    fn finish_inflater(&mut self) -> Result<(), CaptureError> {
        let Some(handle) = self.inflater.take() else {
            return Ok(());
        };
        match handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(CaptureError::Truncated {
                path: self.path.clone(),
                offset: self.offset_text(),
                packets: self.packets,
                reason: format!("gzip stream: {reason}"),
            }),
            Err(_) => Err(CaptureError::Libpcap { path: self.path.clone(), reason: "gzip reader failed".into() }),
        }
    }

    fn offset_text(&self) -> String {
        self.offset.map_or_else(|| "unknown".to_string(), |o| o.to_string())
    }

    fn classify(&self, error: pcap::Error) -> CaptureError {
        let reason = error.to_string();
        if reason.contains("truncated") {
            CaptureError::Truncated {
                path: self.path.clone(),
                offset: self.offset_text(),
                packets: self.packets,
                reason,
            }
        } else {
            CaptureError::Libpcap {
                path: self.path.clone(),
                reason: format!("after {} packets: {reason}", self.packets),
            }
        }
    }
}

/// What a live capture yields: a frame, a quiet moment (the clock moves on
/// without packets, so later stages can time things out), or the request to
/// stop.
pub enum LiveEvent<'a> {
    Frame(Frame<'a>),
    Idle(Nanos),
    Stop,
}

/// Counters libpcap keeps for a live capture.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub received: AtomicU64,
    pub kernel_dropped: AtomicU64,
    pub interface_dropped: AtomicU64,
}

#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub interface: String,
    /// BPF filter expression ("" for everything).
    pub filter: String,
    pub snaplen: i32,
    pub buffer_bytes: i32,
    pub promiscuous: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            interface: "lo".into(),
            filter: String::new(),
            snaplen: 262_144,
            buffer_bytes: 64 << 20,
            promiscuous: false,
        }
    }
}

/// Live capture on an interface through libpcap.
pub struct LiveCapture {
    capture: Capture<Active>,
    interface: String,
    linktype: i32,
    stop: Arc<AtomicBool>,
    pub counters: Arc<LiveCounters>,
    frames_since_stats: u32,
}

impl LiveCapture {
    /// Opens `options.interface`; `stop` ends the capture when set.
    pub fn open(options: &LiveOptions, stop: Arc<AtomicBool>) -> Result<LiveCapture, CaptureError> {
        let live_error = |e: pcap::Error| {
            let mut reason = e.to_string();
            if reason.contains("Operation not permitted") {
                reason.push_str(" (capture needs root or the CAP_NET_RAW capability)");
            }
            CaptureError::Live { interface: options.interface.clone(), reason }
        };
        let mut capture = Capture::from_device(options.interface.as_str())
            .map_err(live_error)?
            .snaplen(options.snaplen)
            .promisc(options.promiscuous)
            .buffer_size(options.buffer_bytes)
            .immediate_mode(false)
            .timeout(100)
            .open()
            .map_err(live_error)?
            // Non-blocking, with our own poll: libpcap's read timeout does
            // not fire on Linux while no packet arrives, and the capture
            // must notice a stop request on a quiet interface.
            .setnonblock()
            .map_err(live_error)?;
        if !options.filter.is_empty() {
            capture.filter(&options.filter, true).map_err(|e| CaptureError::Live {
                interface: options.interface.clone(),
                reason: format!("bad filter {:?}: {e}", options.filter),
            })?;
        }
        let linktype = capture.get_datalink().0;
        if !crate::decode::is_supported_linktype(linktype) {
            return Err(CaptureError::Live {
                interface: options.interface.clone(),
                reason: format!("link type {linktype} is not supported"),
            });
        }
        Ok(LiveCapture {
            capture,
            interface: options.interface.clone(),
            linktype,
            stop,
            counters: Arc::new(LiveCounters::default()),
            frames_since_stats: 0,
        })
    }

    pub fn next_frame(&mut self) -> Result<LiveEvent<'_>, CaptureError> {
        if self.stop.load(Ordering::Relaxed) {
            self.refresh_counters();
            return Ok(LiveEvent::Stop);
        }
        self.frames_since_stats += 1;
        if self.frames_since_stats >= 4096 {
            self.refresh_counters();
        }
        match detach(self.capture.next_packet()) {
            Ok((header, data)) => {
                let ts = nanos(header.ts.tv_sec as Nanos, header.ts.tv_usec as Nanos * 1_000);
                // SAFETY: see `detach`.
                Ok(LiveEvent::Frame(Frame { ts, linktype: self.linktype, data: unsafe { &*data } }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.wait_readable(100);
                self.refresh_counters();
                Ok(LiveEvent::Idle(now_nanos()))
            }
            Err(e) => Err(CaptureError::Live { interface: self.interface.clone(), reason: e.to_string() }),
        }
    }

    /// Waits until the capture has packets, at most `ms` milliseconds.
    fn wait_readable(&self, ms: i32) {
        use std::os::fd::AsRawFd;
        let mut fds = libc::pollfd { fd: self.capture.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut fds, 1, ms) };
    }

    fn refresh_counters(&mut self) {
        self.frames_since_stats = 0;
        if let Ok(stats) = self.capture.stats() {
            self.counters.received.store(stats.received as u64, Ordering::Relaxed);
            self.counters.kernel_dropped.store(stats.dropped as u64, Ordering::Relaxed);
            self.counters.interface_dropped.store(stats.if_dropped as u64, Ordering::Relaxed);
        }
    }
}

/// Ends the borrow of the capture handle that `next_packet` holds, so the
/// error path may use `self` (a limitation of today's borrow checker). The
/// bytes stay valid until the next read from the same handle, which the
/// `&mut self` lifetime of the returned frame guarantees.
fn detach(result: Result<pcap::Packet<'_>, pcap::Error>) -> Result<(pcap::PacketHeader, *const [u8]), pcap::Error> {
    result.map(|packet| (*packet.header, packet.data as *const [u8]))
}

pub fn now_nanos() -> Nanos {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as Nanos)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

type Inflated = (OwnedFd, JoinHandle<Result<(), String>>, [u8; 4]);

/// libpcap cannot read gzip: a thread inflates the file into a pipe whose
/// reading end libpcap gets, so nothing is held in memory or on disk. The
/// first four inflated bytes are peeked to check the inner format.
fn inflate_through_pipe(path: &Path) -> std::io::Result<Inflated> {
    let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(File::open(path)?));
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match decoder.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(e),
        }
    }
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills both descriptors on success; each is then owned once.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let head = magic[..got].to_vec();
    let handle = std::thread::Builder::new().name("gunzip".into()).spawn(move || {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, write_end);
        let copy = out.write_all(&head).and_then(|_| std::io::copy(&mut decoder, &mut out)).and_then(|_| out.flush());
        match copy {
            Ok(_) => Ok(()),
            // The reader stopped early (an error downstream): not ours to report.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })?;
    Ok((read_end, handle, magic))
}

/// A packet header's time in nanoseconds. A crafted pcapng can claim a
/// time past the year 2262 (what an i64 of nanoseconds holds): it is held
/// at the limit rather than overflowing (a panic, or a wrapped time).
fn nanos(seconds: Nanos, sub_second_nanos: Nanos) -> Nanos {
    seconds.saturating_mul(1_000_000_000).saturating_add(sub_second_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcapng's 64-bit time can claim seconds whose nanoseconds an i64
    /// cannot hold (the reader thread panicked on such a file).
    #[test]
    fn times_past_what_nanoseconds_hold_are_held_at_the_limit() {
        assert_eq!(nanos(1_700_000_000, 5), 1_700_000_000_000_000_005);
        assert_eq!(nanos(0x7fff_ffff << 32, 999_999_999), Nanos::MAX);
        assert_eq!(nanos(-(0x7fff_ffff << 32), 0), Nanos::MIN);
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = CaptureFile::open(Path::new("/nonexistent/x.pcap")).err().unwrap();
        assert_eq!(err.to_string(), "/nonexistent/x.pcap: cannot read: No such file or directory (os error 2)");
    }

    #[test]
    fn text_file_is_not_a_capture() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "hello world").unwrap();
        let err = CaptureFile::open(&path).err().unwrap();
        assert!(err.to_string().ends_with("not a pcap or pcapng capture (starts with 68 65 6c 6c)"), "{err}");
    }
}

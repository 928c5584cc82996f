//! Finding the way back into a byte stream: a connection joined mid-way
//! (which side is the client is not known yet), or one direction lost after
//! a capture hole or a malformed message, is scanned line by line for the
//! next request or status line, and parsing resumes there.

use super::framing::{State, scan_line};
use super::{Conn, Ctx, MAX_SCAN_UNKNOWN, Mode, head};
use crate::exchange::Nanos;
use crate::reassembly::Dir;

impl Conn {
    /// Client unknown (joined mid-stream, no port given): scans `dir` for a
    /// start line; a request line makes `dir` the client, a status line the
    /// server. Then parsing goes on normally with the rest of `data`.
    pub(super) fn find_client(&mut self, ctx: &mut Ctx, dir: Dir, mut data: &[u8], ts: Nanos) {
        while !data.is_empty() {
            let scan = &mut self.scan[dir];
            let (used, line_ts) = scan_line(scan, data, ts, ctx.config.max_head);
            data = &data[used..];
            let Some(line_ts) = line_ts else { continue };
            let line = std::mem::take(&mut scan.buf);
            let first = head::first_line(&line);
            if head::is_request_line(first) {
                self.client = Some(dir);
                self.become_http(ctx);
                self.req.buf = line;
                self.rejoin_request(ctx, line_ts);
                return self.feed_request(ctx, data, ts);
            }
            if head::is_status_line(first) {
                self.client = Some(1 - dir);
                self.become_http(ctx);
                self.resp.buf = line;
                self.rejoin_response(ctx, line_ts);
                return self.feed_response(ctx, data, ts);
            }
            ctx.stats.resync_bytes += line.len() as u64;
            self.scanned += line.len() as u64;
            if self.scanned > MAX_SCAN_UNKNOWN {
                self.mode = Mode::Ignored;
                ctx.stats.non_http_connections += 1;
                return;
            }
        }
    }

    /// Lost in a known direction: looks for the next line of the right kind.
    pub(super) fn resync(&mut self, ctx: &mut Ctx, request_side: bool, data: &[u8], ts: Nanos) -> usize {
        let side = if request_side { &mut self.req } else { &mut self.resp };
        let (used, line_ts) = scan_line(side, data, ts, ctx.config.max_head);
        let Some(line_ts) = line_ts else { return used };
        let first = head::first_line(&side.buf);
        let found = if request_side { head::is_request_line(first) } else { head::is_status_line(first) };
        if !found {
            ctx.stats.resync_bytes += side.buf.len() as u64;
            side.buf.clear();
        } else if request_side {
            self.rejoin_request(ctx, line_ts);
        } else {
            self.rejoin_response(ctx, line_ts);
        }
        used
    }

    /// A request line sits in `req.buf`: read its head from there.
    pub(super) fn rejoin_request(&mut self, ctx: &mut Ctx, ts: Nanos) {
        self.req.state = State::Head;
        self.req.msg_ts = ts;
        ctx.pending.add(ts);
        self.req_registered = true;
        // An HTTP/0.9 request is complete with its line.
        self.request_head(ctx, b"");
    }

    /// A status line sits in `resp.buf`: it is read again as the start of
    /// an answer. With bare CR line ends that "line" may hold a whole head
    /// and the start of a body, which the head reader then tells apart.
    pub(super) fn rejoin_response(&mut self, ctx: &mut Ctx, ts: Nanos) {
        self.resp.state = State::Idle;
        let line = std::mem::take(&mut self.resp.buf);
        self.feed_response(ctx, &line, ts);
    }
}

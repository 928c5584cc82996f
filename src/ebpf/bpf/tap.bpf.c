// SPDX-License-Identifier: (MIT OR GPL-2.0)
/* shadowtap's eBPF capture: what the watched processes read from and write
 * to the sockets they accepted, as ordered chunks on one ring buffer.
 *
 * In: BTF tracepoints sys_enter/sys_exit (no tracefs, no kprobes), uprobes
 * on libssl's SSL_read/SSL_write (and _ex forms, SSL_set_fd,
 * SSL_do_handshake) for HTTPS plaintext, sched_process_fork/exit to follow
 * new processes of a watched pid.
 * Out: events on `events` (layout in ../event.rs, which must agree):
 *   OPEN  a socket accepted by a watched process on a watched port or path
 *   DATA  up to 16 KiB of one direction at a byte offset
 *   SKIP  bytes that went by unread (sendfile, a cut call): a gap
 *   CLOSE the socket closed, with the final offsets of both directions
 * and counters in `stats`. Nothing waits: a full ring buffer drops the
 * chunk (counted), and user space sees the hole in the offsets.
 *
 * Only the server side of a connection is kept (sockets the process
 * accepted): on loopback the client's side is never seen a second time. */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MAX_CHUNK 16384
/* Chunks one call may emit (4 MiB), and iovecs one call may walk: beyond,
 * the rest is a counted SKIP. */
#define MAX_LOOPS 320
#define MAX_IOV 64

#define EV_OPEN 1
#define EV_DATA 2
#define EV_CLOSE 3
#define EV_SKIP 4

#define DIR_IN 0  /* read by the server: the request side */
#define DIR_OUT 1 /* written by the server: the response side */

#define FLAG_TLS 1
#define FLAG_CUT 2

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

/* x86_64 syscall numbers (NR_NONE: no call waits for its exit) */
#define NR_NONE -1
#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_readv 19
#define NR_writev 20
#define NR_sendfile 40
#define NR_accept 43
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_accept4 288

/* Counters, one slot each in the per-CPU `stats` array (event.rs: Stat). */
enum stat {
	ST_EVENTS,
	ST_BYTES,
	ST_RB_DROPS,
	ST_CHUNKS_CUT,
	ST_CONNS_OPENED,
	ST_CONNS_FULL,
	ST_CALLS_FULL,
	ST_TLS_NO_FD,
	ST_TLS_NOT_DECRYPTED,
	ST_SKIPPED_BYTES,
	ST_PIDS_FULL,
	ST_SAMPLED_OUT,
	ST_COUNT,
};

struct event {
	u8 kind;
	u8 dir;
	u8 flags;
	u8 family;
	u32 len;
	u64 conn;
	u64 ts;
	u64 off;
	u64 skip;
	u32 tgid;
	u32 fd;
};

struct open_info {
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
	char path[108];
};

struct open_event {
	struct event h;
	struct open_info o;
};

struct chunk {
	struct event h;
	u8 data[MAX_CHUNK];
};

struct conn_key {
	u32 tgid;
	u32 fd;
};

struct conn {
	u64 id;
	u64 off[2];
	u8 tls;
	u8 sniffed;
};

/* A syscall between its enter and its exit. */
struct call {
	s32 nr;
	u32 fd;
	u64 buf;
	u64 iov;
	u32 iovcnt;
};

/* An SSL_* call between its entry and its return. */
struct ssl_call {
	u64 ssl;
	u64 buf;
	u64 num;
	u64 size_ptr;
	u8 write;
	u8 ex;
};

struct config {
	u8 filter_ports;
	u8 filter_unix;
	u8 tls;
	u8 cgroup_levels;
	u32 levels[4];
	/* Connections kept, in hundredths of a percent (--sample): the
	 * others are never tracked, so they cost one lookup per call. */
	u32 sample_bp;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, u8);
} traced_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u64);
	__type(value, u8);
} traced_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u16);
	__type(value, u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[108]);
	__type(value, u8);
} unix_paths SEC(".maps");

/* LRU: a process that exits closes its sockets without a close call. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct conn_key);
} ssl_fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_COUNT);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct chunk);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} next_conn SEC(".maps");

/* Waking the reader for every event costs the watched service a
 * wake-up per read and write; instead the reader polls every few ms and
 * is woken early only when this much is waiting. */
#define WAKEUP_BYTES (512 << 10)

static __always_inline u64 wakeup(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
									   : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(u32 which, u64 n)
{
	u64 *slot = bpf_map_lookup_elem(&stats, &which);
	if (slot)
		*slot += n;
}

static __always_inline struct config *config(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&cfg, &zero);
}

static __always_inline bool in_cgroup_at(struct config *c, int i)
{
	if (i >= c->cgroup_levels || i >= 4)
		return false;
	u64 id = bpf_get_current_ancestor_cgroup_id(c->levels[i]);
	return bpf_map_lookup_elem(&traced_cgroups, &id) != 0;
}

/* A process is watched by its pid (and the processes it forks) or by the
 * cgroup it runs in (a systemd unit: new workers included). */
static __always_inline bool traced(u32 tgid)
{
	if (bpf_map_lookup_elem(&traced_tgids, &tgid))
		return true;
	struct config *c = config();
	if (!c || c->cgroup_levels == 0)
		return false;
	return in_cgroup_at(c, 0) || in_cgroup_at(c, 1) || in_cgroup_at(c, 2) ||
	       in_cgroup_at(c, 3);
}

static __always_inline bool relevant(long nr)
{
	switch (nr) {
	case NR_read:
	case NR_write:
	case NR_close:
	case NR_readv:
	case NR_writev:
	case NR_sendfile:
	case NR_accept:
	case NR_sendto:
	case NR_recvfrom:
	case NR_sendmsg:
	case NR_recvmsg:
	case NR_accept4:
		return true;
	}
	return false;
}

static __always_inline int direction_of(u32 nr)
{
	switch (nr) {
	case NR_read:
	case NR_readv:
	case NR_recvfrom:
	case NR_recvmsg:
		return DIR_IN;
	}
	return DIR_OUT;
}

static __always_inline void fill_header(struct event *h, u8 kind, u8 dir, u8 flags, u64 conn,
					u64 ts, u64 off, u32 tgid, u32 fd)
{
	h->kind = kind;
	h->dir = dir;
	h->flags = flags;
	h->family = 0;
	h->len = 0;
	h->conn = conn;
	h->ts = ts;
	h->off = off;
	h->skip = 0;
	h->tgid = tgid;
	h->fd = fd;
}

static __always_inline void submit_header(struct event *h)
{
	if (bpf_ringbuf_output(&events, h, sizeof(*h), wakeup())) {
		count(ST_RB_DROPS, 1);
		return;
	}
	count(ST_EVENTS, 1);
}

static __always_inline void emit_skip(u64 conn, u8 dir, u8 flags, u64 off, u64 len, u64 ts,
				      u32 tgid, u32 fd)
{
	struct event h;
	fill_header(&h, EV_SKIP, dir, flags, conn, ts, off, tgid, fd);
	h.skip = len;
	count(ST_SKIPPED_BYTES, len);
	submit_header(&h);
}

/* ---- emitting the bytes of one call, chunk by chunk (bpf_loop) ---------- */

struct emit_state {
	u64 conn;
	u64 ts;
	u64 off;
	u64 base;
	u64 left_in_seg;
	u64 remaining;
	u64 iov;
	u32 iovcnt;
	u32 iov_idx;
	u32 tgid;
	u32 fd;
	u8 dir;
	u8 flags;
	u8 cut;
};

struct iovec_user {
	u64 base;
	u64 len;
};

static long emit_one(u32 index, void *vstate)
{
	struct emit_state *e = vstate;
	if (e->remaining == 0)
		return 1;
	if (e->left_in_seg == 0) {
		struct iovec_user v;
		if (!e->iov || e->iov_idx >= e->iovcnt || e->iov_idx >= MAX_IOV) {
			e->cut = 1;
			return 1;
		}
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(e->iov + e->iov_idx * sizeof(v)))) {
			e->cut = 1;
			return 1;
		}
		e->iov_idx++;
		e->base = v.base;
		e->left_in_seg = v.len;
		return 0;
	}
	u64 n = e->left_in_seg;
	if (n > e->remaining)
		n = e->remaining;
	if (n > MAX_CHUNK)
		n = MAX_CHUNK;
	u32 zero = 0;
	struct chunk *c = bpf_map_lookup_elem(&scratch, &zero);
	if (!c)
		return 1;
	fill_header(&c->h, EV_DATA, e->dir, e->flags, e->conn, e->ts, e->off, e->tgid, e->fd);
	u32 len = n;
	if (len > MAX_CHUNK)
		return 1;
	c->h.len = len;
	if (bpf_probe_read_user(c->data, len, (void *)e->base)) {
		/* Unreadable (paged out): the bytes went by, say so. */
		emit_skip(e->conn, e->dir, e->flags | FLAG_CUT, e->off, len, e->ts, e->tgid, e->fd);
		count(ST_CHUNKS_CUT, 1);
	} else if (bpf_ringbuf_output(&events, c, sizeof(struct event) + len, wakeup())) {
		count(ST_RB_DROPS, 1);
	} else {
		count(ST_EVENTS, 1);
		count(ST_BYTES, len);
	}
	e->base += n;
	e->left_in_seg -= n;
	e->remaining -= n;
	e->off += n;
	return 0;
}

/* Emits `total` bytes read or written by one call: from `buf` or, when
 * `iov` is set, from its `iovcnt` iovecs. Advances the connection's offset
 * by `total` whatever could be read. */
static __always_inline void emit_bytes(struct conn *conn, u8 dir, u8 flags, u64 buf, u64 iov,
				       u32 iovcnt, u64 total, u32 tgid, u32 fd)
{
	struct emit_state e = {};
	e.conn = conn->id;
	e.ts = bpf_ktime_get_ns();
	e.off = conn->off[dir & 1];
	e.base = buf;
	e.left_in_seg = iov ? 0 : total;
	e.remaining = total;
	e.iov = iov;
	e.iovcnt = iovcnt;
	e.tgid = tgid;
	e.fd = fd;
	e.dir = dir;
	e.flags = flags;
	bpf_loop(MAX_LOOPS, emit_one, &e, 0);
	if (e.remaining > 0) {
		count(ST_CHUNKS_CUT, 1);
		emit_skip(e.conn, dir, flags | FLAG_CUT, e.off, e.remaining, e.ts, tgid, fd);
	}
	conn->off[dir & 1] += total;
}

/* ---- the socket behind a new fd ----------------------------------------- */

static __always_inline struct sock *sock_of_fd(u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd >= max)
		return 0;
	struct file *file = 0;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	return BPF_CORE_READ(sock, sk);
}

/* Fills the addresses of `sk`; false when the socket is not watched. */
static __always_inline bool describe_socket(struct sock *sk, struct open_event *ev)
{
	struct config *c = config();
	if (!c)
		return false;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev->h.family = family;
	if (family == AF_INET || family == AF_INET6) {
		ev->o.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		ev->o.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (c->filter_ports && !bpf_map_lookup_elem(&ports, &ev->o.lport))
			return false;
		if (c->filter_unix && !c->filter_ports)
			return false;
		if (family == AF_INET) {
			u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
			u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
			__builtin_memcpy(ev->o.laddr, &l, 4);
			__builtin_memcpy(ev->o.raddr, &r, 4);
		} else {
			BPF_CORE_READ_INTO(&ev->o.laddr, sk, __sk_common.skc_v6_rcv_saddr);
			BPF_CORE_READ_INTO(&ev->o.raddr, sk, __sk_common.skc_v6_daddr);
		}
		return true;
	}
	if (family == AF_UNIX) {
		struct unix_address *addr = BPF_CORE_READ((struct unix_sock *)sk, addr);
		if (addr) {
			void *name = (void *)addr + bpf_core_field_offset(struct unix_address, name);
			bpf_probe_read_kernel_str(ev->o.path, sizeof(ev->o.path), name + 2);
		}
		if (c->filter_unix && !bpf_map_lookup_elem(&unix_paths, ev->o.path))
			return false;
		if (c->filter_ports && !c->filter_unix)
			return false;
		return true;
	}
	return false;
}

static __always_inline void close_conn(struct conn_key *key, struct conn *conn, u64 ts)
{
	/* Counted at the close, not at the handshake: a process probed
	 * between the two still gives its plaintext (--tls off, no libssl,
	 * a worker not probed yet: none). */
	if (conn->tls && conn->off[0] == 0 && conn->off[1] == 0)
		count(ST_TLS_NOT_DECRYPTED, 1);
	struct event h;
	fill_header(&h, EV_CLOSE, 0, 0, conn->id, ts, conn->off[0], key->tgid, key->fd);
	h.skip = conn->off[1];
	submit_header(&h);
	bpf_map_delete_elem(&conns, key);
}

static __always_inline void opened(u32 tgid, u32 fd)
{
	struct sock *sk = sock_of_fd(fd);
	if (!sk)
		return;
	/* The open event is built in the per-CPU scratch: it is too big for
	 * the stack next to everything else. */
	u32 zero = 0;
	struct chunk *c = bpf_map_lookup_elem(&scratch, &zero);
	if (!c)
		return;
	struct open_event *ev = (struct open_event *)c;
	__builtin_memset(&ev->o, 0, sizeof(ev->o));
	if (!describe_socket(sk, ev))
		return;
	u64 ts = bpf_ktime_get_ns();
	struct conn_key key = { .tgid = tgid, .fd = fd };
	struct conn *stale = bpf_map_lookup_elem(&conns, &key);
	if (stale)
		close_conn(&key, stale, ts);
	u64 *next = bpf_map_lookup_elem(&next_conn, &zero);
	if (!next)
		return;
	struct conn conn = {};
	conn.id = __sync_fetch_and_add(next, 1) + 1;
	struct config *cf = config();
	if (cf && cf->sample_bp < 10000 && ((conn.id * 0x9E3779B97F4A7C15ULL) >> 40) % 10000 >= cf->sample_bp) {
		count(ST_SAMPLED_OUT, 1);
		return;
	}
	if (bpf_map_update_elem(&conns, &key, &conn, BPF_ANY)) {
		count(ST_CONNS_FULL, 1);
		return;
	}
	count(ST_CONNS_OPENED, 1);
	u8 family = ev->h.family;
	fill_header(&ev->h, EV_OPEN, 0, 0, conn.id, ts, 0, tgid, fd);
	ev->h.family = family;
	ev->h.len = sizeof(ev->o);
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), wakeup()))
		count(ST_RB_DROPS, 1);
	else
		count(ST_EVENTS, 1);
}

/* ---- syscalls ------------------------------------------------------------ */

/* `regs` is the tracepoint's own (trusted) pointer: plain loads. */
static __always_inline u64 arg(struct pt_regs *regs, int i)
{
	switch (i) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	case 2:
		return regs->dx;
	}
	return regs->r10;
}

/* Inside an SSL call, a syscall on a socket ties the SSL object to it. */
static __always_inline void note_ssl_fd(u64 pid_tgid, struct conn_key *key, struct conn *conn)
{
	struct ssl_call *sc = bpf_map_lookup_elem(&ssl_calls, &pid_tgid);
	if (!sc)
		return;
	u64 ssl = sc->ssl;
	bpf_map_update_elem(&ssl_fds, &ssl, key, BPF_ANY);
	conn->tls = 1;
	conn->sniffed = 1;
}

/* The start of a call: whether it concerns a watched socket (then `call`
 * says what to read once it returned). A close is handled here, whole. */
static __always_inline bool call_begin(u64 pid_tgid, long nr, struct pt_regs *regs, struct call *call)
{
	u32 tgid = pid_tgid >> 32;
	if (!traced(tgid))
		return false;
	call->nr = nr;
	call->fd = arg(regs, 0);
	if (nr == NR_accept || nr == NR_accept4)
		return true;
	struct conn_key key = { .tgid = tgid, .fd = call->fd };
	struct conn *conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return false;
	if (nr == NR_close) {
		close_conn(&key, conn, bpf_ktime_get_ns());
		return false;
	}
	note_ssl_fd(pid_tgid, &key, conn);
	switch (nr) {
	case NR_readv:
	case NR_writev:
		call->iov = arg(regs, 1);
		call->iovcnt = arg(regs, 2);
		break;
	case NR_recvmsg:
	case NR_sendmsg: {
		u64 msg = arg(regs, 1);
		/* struct user_msghdr: name, namelen, iov, iovlen */
		bpf_probe_read_user(&call->iov, sizeof(call->iov), (void *)(msg + 16));
		u64 iovlen = 0;
		bpf_probe_read_user(&iovlen, sizeof(iovlen), (void *)(msg + 24));
		call->iovcnt = iovlen;
		break;
	}
	default:
		call->buf = arg(regs, 1);
	}
	return true;
}

/* The end of a call that call_begin kept: what it returned (`ret`). */
static __always_inline void call_end(u64 pid_tgid, struct call *call, long ret)
{
	if (ret <= 0)
		return;
	u32 tgid = pid_tgid >> 32;
	if (call->nr == NR_accept || call->nr == NR_accept4) {
		opened(tgid, ret);
		return;
	}
	struct conn_key key = { .tgid = tgid, .fd = call->fd };
	struct conn *conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return;
	int dir = direction_of(call->nr);
	if (!conn->sniffed) {
		conn->sniffed = 1;
		/* A TLS handshake (record type 22) as the first bytes read:
		 * the plaintext comes from the SSL uprobes, not from here. */
		u8 first = 0;
		if (dir == DIR_IN && conn->off[DIR_IN] == 0 && call->buf) {
			bpf_probe_read_user(&first, 1, (void *)call->buf);
			if (first == 22)
				conn->tls = 1;
		}
	}
	if (conn->tls)
		return;
	if (call->nr == NR_sendfile) {
		u64 ts = bpf_ktime_get_ns();
		emit_skip(conn->id, DIR_OUT, 0, conn->off[DIR_OUT], ret, ts, tgid, call->fd);
		conn->off[DIR_OUT] += ret;
		return;
	}
	emit_bytes(conn, dir, 0, call->buf, call->iov, call->iovcnt, ret, tgid, call->fd);
}

/* The hooks: BTF tracepoints at the entry and exit of every system call
 * (no tracefs, no kprobes; fentry/fexit would spare the other calls but
 * cannot attach on every kernel, e.g. this project's CI). Every system
 * call of every process on the host passes here, so what runs before the
 * filters is a switch on the call number and one hash lookup; the call's
 * arguments wait for its exit in task storage (a pointer from the task,
 * not a hash lookup on every exit). */

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long nr)
{
	if (!relevant(nr))
		return 0;
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct call call = {};
	if (!call_begin(pid_tgid, nr, regs, &call))
		return 0;
	struct call *slot = bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot) {
		count(ST_CALLS_FULL, 1);
		return 0;
	}
	*slot = call;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	if (!relevant(nr))
		return 0;
	struct call *slot = bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0, 0);
	if (!slot || slot->nr != nr)
		return 0;
	struct call call = *slot;
	slot->nr = NR_NONE;
	call_end(bpf_get_current_pid_tgid(), &call, ret);
	return 0;
}

/* ---- TLS plaintext: libssl uprobes --------------------------------------- */

static __always_inline int ssl_enter(struct pt_regs *ctx, u8 write, u8 ex)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!traced(pid_tgid >> 32))
		return 0;
	struct ssl_call sc = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		/* int num (SSL_read/SSL_write), size_t num (_ex forms) */
		.num = ex ? PT_REGS_PARM3(ctx) : (u64)(u32)PT_REGS_PARM3(ctx),
		.size_ptr = ex ? PT_REGS_PARM4(ctx) : 0,
		.write = write,
		.ex = ex,
	};
	bpf_map_update_elem(&ssl_calls, &pid_tgid, &sc, BPF_ANY);
	return 0;
}

static __always_inline int ssl_return(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ssl_call *found = bpf_map_lookup_elem(&ssl_calls, &pid_tgid);
	if (!found)
		return 0;
	struct ssl_call sc = *found;
	bpf_map_delete_elem(&ssl_calls, &pid_tgid);
	/* Every one of these returns an int: the upper half of the register
	 * is not part of it (-1 must not read as 4 GiB). */
	int ret = (int)PT_REGS_RC(ctx);
	u64 bytes = 0;
	if (sc.ex) {
		if (ret == 1 && sc.size_ptr)
			bpf_probe_read_user(&bytes, sizeof(bytes), (void *)sc.size_ptr);
	} else if (ret > 0) {
		bytes = ret;
	}
	if (bytes == 0 || !sc.buf)
		return 0;
	if (bytes > sc.num)
		bytes = sc.num;
	struct conn_key *key = bpf_map_lookup_elem(&ssl_fds, &sc.ssl);
	if (!key) {
		count(ST_TLS_NO_FD, 1);
		return 0;
	}
	struct conn_key k = *key;
	struct conn *conn = bpf_map_lookup_elem(&conns, &k);
	if (!conn)
		return 0;
	conn->tls = 1;
	conn->sniffed = 1;
	emit_bytes(conn, sc.write ? DIR_OUT : DIR_IN, FLAG_TLS, sc.buf, 0, 0, bytes, k.tgid, k.fd);
	return 0;
}

SEC("uprobe.multi")
int BPF_UPROBE(ssl_read_enter)
{
	return ssl_enter(ctx, 0, 0);
}

SEC("uprobe.multi")
int BPF_UPROBE(ssl_read_ex_enter)
{
	return ssl_enter(ctx, 0, 1);
}

SEC("uprobe.multi")
int BPF_UPROBE(ssl_write_enter)
{
	return ssl_enter(ctx, 1, 0);
}

SEC("uprobe.multi")
int BPF_UPROBE(ssl_write_ex_enter)
{
	return ssl_enter(ctx, 1, 1);
}

SEC("uretprobe.multi")
int BPF_URETPROBE(ssl_return_probe)
{
	return ssl_return(ctx);
}

/* SSL_set_fd(ssl, fd) and SSL_do_handshake(ssl): the first ties an SSL
 * object to its socket directly; during the second, the handshake's own
 * reads and writes tie it (note_ssl_fd), before any SSL_read can find the
 * request already buffered and make no syscall at all. */
SEC("uprobe.multi")
int BPF_UPROBE(ssl_set_fd_enter)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 tgid = pid_tgid >> 32;
	if (!traced(tgid))
		return 0;
	u64 ssl = PT_REGS_PARM1(ctx);
	struct conn_key key = { .tgid = tgid, .fd = (u32)PT_REGS_PARM2(ctx) };
	/* Kept for every socket, followed or not: an SSL call on a socket
	 * not followed (another port, sampled out) is then told apart from
	 * one whose socket is unknown (tls_unmatched). */
	bpf_map_update_elem(&ssl_fds, &ssl, &key, BPF_ANY);
	struct conn *conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return 0;
	conn->tls = 1;
	conn->sniffed = 1;
	return 0;
}

SEC("uprobe.multi")
int BPF_UPROBE(ssl_handshake_enter)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!traced(pid_tgid >> 32))
		return 0;
	struct ssl_call sc = { .ssl = PT_REGS_PARM1(ctx) };
	bpf_map_update_elem(&ssl_calls, &pid_tgid, &sc, BPF_ANY);
	return 0;
}

/* ---- following the processes of a watched pid ---------------------------- */

SEC("raw_tracepoint/sched_process_fork")
int on_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 ptgid = BPF_CORE_READ(parent, tgid);
	if (!bpf_map_lookup_elem(&traced_tgids, &ptgid))
		return 0;
	u32 pid = BPF_CORE_READ(child, pid);
	u32 tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0; /* a thread: its process is watched already */
	u8 yes = 1;
	if (bpf_map_update_elem(&traced_tgids, &tgid, &yes, BPF_ANY))
		count(ST_PIDS_FULL, 1);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	u32 pid = BPF_CORE_READ(task, pid);
	u32 tgid = BPF_CORE_READ(task, tgid);
	if (pid == tgid)
		bpf_map_delete_elem(&traced_tgids, &tgid);
	return 0;
}

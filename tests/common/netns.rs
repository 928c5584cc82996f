//! Two network namespaces joined by a veth pair, for tests that need a
//! real interface between a client and a server (and traffic nobody else
//! on the host sees): `server` holds 10.X.0.1 on `server_dev`, `client`
//! 10.X.0.2. Everything is removed on drop, processes first.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

/// A child process killed when the test ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn ip(args: &[&str]) {
    let result = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(result.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&result.stderr));
}

pub struct Pair {
    pub server: String,
    pub client: String,
    pub server_dev: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    /// Processes living in the namespaces, stopped before they are removed.
    pub children: Vec<Guard>,
    made: Vec<String>,
}

impl Pair {
    /// Namespaces named after `tag` and this process, on subnet 10.`net`.0.0/24.
    pub fn new(tag: &str, net: u8) -> Pair {
        let pid = std::process::id();
        let (server, client) = (format!("{tag}{pid}s"), format!("{tag}{pid}c"));
        let (server_dev, client_dev) = (format!("{tag}{pid}vs"), format!("{tag}{pid}vc"));
        let mut pair = Pair {
            server,
            client,
            server_dev,
            server_ip: Ipv4Addr::new(10, net, 0, 1),
            client_ip: Ipv4Addr::new(10, net, 0, 2),
            children: Vec::new(),
            made: Vec::new(),
        };
        for ns in [pair.server.clone(), pair.client.clone()] {
            ip(&["netns", "add", &ns]);
            pair.made.push(ns);
        }
        ip(&["link", "add", &pair.server_dev, "type", "veth", "peer", "name", &client_dev]);
        ip(&["link", "set", &pair.server_dev, "netns", &pair.server]);
        ip(&["link", "set", &client_dev, "netns", &pair.client]);
        let (server_cidr, client_cidr) = (format!("{}/24", pair.server_ip), format!("{}/24", pair.client_ip));
        ip(&["-n", &pair.server, "addr", "add", &server_cidr, "dev", &pair.server_dev]);
        ip(&["-n", &pair.client, "addr", "add", &client_cidr, "dev", &client_dev]);
        for (ns, dev) in [(&pair.server, &pair.server_dev), (&pair.client, &client_dev)] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        pair
    }

    /// Answers from the server to `cidr` go over the veth to the client's
    /// namespace, which drops them: what spoofed sources look like.
    pub fn route_to_client(&self, cidr: &str) {
        ip(&["-n", &self.server, "route", "add", cidr, "via", &self.client_ip.to_string()]);
    }

    /// `ip netns exec NS PROGRAM...` as a command to complete and spawn.
    pub fn exec(ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]).stdin(Stdio::null());
        command
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Processes first: a namespace with processes in it outlives its name.
        self.children.clear();
        for name in &self.made {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
        // If the pair never left the root namespace.
        let _ = Command::new("ip").args(["link", "del", &self.server_dev]).stderr(Stdio::null()).output();
    }
}

/// Runs `f` on a thread that has entered the network namespace `ns`
/// (`ip netns add` name): its sockets live there.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{ns}");
    let thread = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace descriptor; only this thread moves.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    });
    thread.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

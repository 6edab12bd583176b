//! Echo servers: what probes connect to.
//!
//! A TCP probe only needs a listening socket, but a UDP probe can only tell "accepted" from
//! "dropped" by an answer, so every UDP listener echoes each datagram to its sender; TCP
//! listeners echo too, for [`crate::Held`]. One thread serves every socket with `poll(2)`
//! and stops when the [`Listeners`] are dropped.

use crate::probe::Proto;
use crate::sockaddr::RawAddr;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread::JoinHandle;

/// TCP accept-and-echo and UDP echo servers bound in the calling thread's network namespace;
/// stopped on drop.
pub struct Listeners {
    stop: Option<File>,
    thread: Option<JoinHandle<()>>,
}

enum Endpoint {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Endpoint {
    fn fd(&self) -> libc::c_int {
        match self {
            Endpoint::Tcp(l) => l.as_raw_fd(),
            Endpoint::Udp(u) => u.as_raw_fd(),
        }
    }
}

impl Listeners {
    /// Bind every (proto, address) pair; panics naming the address if one cannot be bound.
    /// IPv6 sockets are v6-only, so IPv4 and IPv6 listeners on one port coexist.
    pub fn start(endpoints: &[(Proto, SocketAddr)]) -> Listeners {
        let sockets: Vec<Endpoint> = endpoints
            .iter()
            .map(|&(proto, addr)| {
                bind(proto, addr).unwrap_or_else(|e| panic!("cannot listen on {proto} {addr}: {e}"))
            })
            .collect();
        let mut fds = [0; 2];
        // SAFETY: pipe2(2) writes two descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            panic!("pipe2 failed: {}", io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by nobody else.
        let (stop_r, stop_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let thread = std::thread::Builder::new()
            .name("zt-testkit-echo".into())
            .spawn(move || serve(&sockets, &stop_r))
            .unwrap_or_else(|e| panic!("cannot start the echo thread: {e}"));
        Listeners {
            stop: Some(stop_w),
            thread: Some(thread),
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        if let Some(mut stop) = self.stop.take() {
            let _ = stop.write_all(b"x");
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A non-blocking socket bound to `addr` (listening, for TCP).
fn bind(proto: Proto, addr: SocketAddr) -> io::Result<Endpoint> {
    let raw = RawAddr::new(addr);
    let kind = match proto {
        Proto::Tcp => libc::SOCK_STREAM,
        Proto::Udp => libc::SOCK_DGRAM,
    };
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe {
        libc::socket(
            raw.family(),
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    let set = |level, name| {
        // SAFETY: sets an int option from a live c_int.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&raw const on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    set(libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    if addr.is_ipv6() {
        set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
    }
    // SAFETY: `raw` points to a valid sockaddr of its stated length.
    if unsafe { libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match proto {
        Proto::Tcp => {
            // SAFETY: listen(2) on our own socket.
            if unsafe { libc::listen(fd.as_raw_fd(), libc::SOMAXCONN) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Endpoint::Tcp(TcpListener::from(fd))
        }
        Proto::Udp => Endpoint::Udp(UdpSocket::from(fd)),
    })
}

/// Serve until `stop` becomes readable.
fn serve(endpoints: &[Endpoint], stop: &OwnedFd) {
    let mut connections: Vec<TcpStream> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let watch = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds: Vec<libc::pollfd> = std::iter::once(watch(stop.as_raw_fd()))
            .chain(endpoints.iter().map(|e| watch(e.fd())))
            .chain(connections.iter().map(|c| watch(c.as_raw_fd())))
            .collect();
        // SAFETY: polls a live array of its stated length.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            if io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            panic!(
                "echo listeners: poll failed: {}",
                io::Error::last_os_error()
            );
        }
        let ready = |i: usize| fds.get(i).is_some_and(|p| p.revents != 0);
        if ready(0) {
            return;
        }
        let first_connection = 1 + endpoints.len();
        let mut index = first_connection;
        connections.retain_mut(|c| {
            let open = !ready(index) || echo(c, &mut buf);
            index += 1;
            open
        });
        for (i, endpoint) in endpoints.iter().enumerate() {
            if !ready(1 + i) {
                continue;
            }
            match endpoint {
                Endpoint::Tcp(l) => {
                    while let Ok((c, _)) = l.accept() {
                        if c.set_nonblocking(true).is_ok() {
                            connections.push(c);
                        }
                    }
                }
                Endpoint::Udp(u) => {
                    while let Ok((n, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], from);
                    }
                }
            }
        }
    }
}

/// Echo what a connection has to read; false once it is closed.
fn echo(connection: &mut TcpStream, buf: &mut [u8]) -> bool {
    loop {
        match connection.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                if connection.write_all(&buf[..n]).is_err() {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

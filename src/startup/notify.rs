//! systemd readiness (`Type=notify`, sd_notify(3)): `READY=1` once guildgate listens and serves,
//! `STOPPING=1` when a stop begins, as datagrams on the unix socket named by `$NOTIFY_SOCKET`
//! (a path, or `@name` in the abstract namespace). Without the variable (not started by systemd)
//! nothing is sent. A few lines of std instead of a crate.

use std::os::unix::net::UnixDatagram;

/// Tells the service manager guildgate is ready: it listens, the database is migrated.
pub fn ready() {
    send("READY=1\nSTATUS=serving");
}

/// Tells the service manager guildgate is stopping (requests in flight are finishing).
pub fn stopping() {
    send("STOPPING=1\nSTATUS=stopping");
}

fn send(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&socket, state) {
        tracing::warn!(error = %e, "cannot notify the service manager ($NOTIFY_SOCKET)");
    }
}

fn send_to(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let datagram = UnixDatagram::unbound()?;
    let name = socket.as_encoded_bytes();
    match name.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
            datagram.send_to_addr(state.as_bytes(), &addr)?;
        }
        _ => {
            datagram.send_to(state.as_bytes(), std::path::Path::new(socket))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_arrives_as_one_datagram_on_the_named_socket() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();

        // Act
        send_to(path.as_os_str(), "READY=1\nSTATUS=serving").unwrap();

        // Assert
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_socket_is_named_with_an_at_sign() {
        // Arrange
        use std::os::linux::net::SocketAddrExt;
        let name = format!("guildgate-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();

        // Act
        send_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();

        // Assert
        let mut buf = [0u8; 16];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}

//! The reference for `/userinfo`: nginx serving the same JSON body as a static file, with the
//! worker processes this machine has cores for and no access log, driven by the same wrk.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx on 127.0.0.1 serving one file; stopped when dropped.
pub struct StaticFile {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _dir: tempfile::TempDir,
}

impl StaticFile {
    /// Serves `body` at `/{name}` (as `application/json`), or says why it cannot.
    pub fn serve(name: &str, body: &[u8]) -> anyhow::Result<Self> {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or_else(|| {
                anyhow::anyhow!("nginx is not installed (apt-get install nginx-light)")
            })?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("root"))?;
        std::fs::write(dir.path().join("root").join(name), body)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let prefix = dir.path().display().to_string();
        let config = format!(
            "worker_processes auto;\ndaemon off;\npid {prefix}/nginx.pid;\n\
             error_log {prefix}/error.log;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  types {{ application/json json; }}\n\
             client_body_temp_path {prefix}/tmp;\n  proxy_temp_path {prefix}/tmp;\n\
             fastcgi_temp_path {prefix}/tmp;\n  uwsgi_temp_path {prefix}/tmp;\n\
             scgi_temp_path {prefix}/tmp;\n\
             server {{ listen 127.0.0.1:{port}; root {prefix}/root; }}\n}}\n"
        );
        let config_file = dir.path().join("nginx.conf");
        std::fs::write(&config_file, config)?;
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let served = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                anyhow::bail!("nginx did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(served)
    }
}

impl Drop for StaticFile {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast shutdown, workers included.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

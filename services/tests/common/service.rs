//! The `autoscaler` binary run as a user runs it: `autoscaler run` on a free port, configured through its
//! environment, killed when dropped.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Service {
    child: Child,
    pub address: String,
}

impl Service {
    /// Starts `autoscaler run` on a free port with `token` as its API token and waits until it says where
    /// it listens.
    pub fn start(database_url: &str, token: &str) -> Self {
        Self::start_with(database_url, token, &[])
    }

    /// As [`Service::start`], with more environment variables.
    pub fn start_with(database_url: &str, token: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .arg("run")
            .env("DATABASE_URL", database_url)
            .env("AUTOSCALER_LISTEN", "127.0.0.1:0")
            .env("AUTOSCALER_API_TOKENS", token)
            .env(
                "AUTOSCALER_OUTBOUND_ALLOW",
                test_support::OUTBOUND_ALLOW_LOCAL,
            )
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("address=").nth(1) {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the service logs its listening address within 60 s");
        Self {
            child,
            address: format!("http://{address}"),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

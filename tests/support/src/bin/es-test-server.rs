//! The contract-faithful Elasticsearch `_bulk` test server as a process. Prints its base URL on the
//! first line of stdout, then serves until killed. Faults are set with `PUT /_test/faults` and counters
//! read from `GET /_test/stats`.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use test_support::es::{EsServer, EsServerOptions};

#[derive(Parser)]
struct Args {
    /// Address to bind; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Keep only ids, not sources (lighter for benchmarks).
    #[arg(long)]
    no_sources: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = EsServerOptions {
        keep_sources: !args.no_sources,
        ..Default::default()
    };
    let server = EsServer::start_on(args.listen, opts).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.url())?;
    out.flush()?;
    drop(out);
    std::future::pending::<()>().await;
    Ok(())
}

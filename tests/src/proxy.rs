//! A TCP proxy a test can cut: while down it closes every connection through it and refuses new
//! ones, as a restarted or unreachable server looks to its clients (PostgreSQL, NATS).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy to one upstream address, on a loopback port of its own.
pub struct Proxy {
    /// Where clients connect (`127.0.0.1:PORT`).
    pub addr: String,
    up: Arc<AtomicBool>,
    /// Bumped at every cut: open connections close.
    cuts: watch::Sender<u64>,
}

impl Proxy {
    /// Starts forwarding to `upstream` (`host:port`) on `rt`.
    pub fn start(rt: &tokio::runtime::Runtime, upstream: &str) -> Proxy {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("proxy port");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (flag, cut_rx, upstream) = (up.clone(), cuts.subscribe(), upstream.to_owned());
        rt.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (upstream, mut cut) = (upstream.clone(), cut_rx.clone());
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else { return };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, up, cuts }
    }

    /// Cuts every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

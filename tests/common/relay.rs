//! A TCP relay in front of a server that counts the connections open through it: how a test
//! sees that a client closed its connection (a dropped stream), whatever the protocol on top.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Starts relaying to `target`; returns the relay's `http://` URL and its open-connection count.
pub async fn relay(target: SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let open = Arc::new(AtomicUsize::new(0));
    let count = open.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                count.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                count.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, open)
}

/// Waits until no connection is open through the relay; panics after `within`.
pub async fn all_closed(open: &AtomicUsize, within: Duration) {
    let since = Instant::now();
    while open.load(Ordering::SeqCst) > 0 {
        assert!(
            since.elapsed() < within,
            "{} connection(s) still open after {within:?}",
            open.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

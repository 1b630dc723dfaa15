//! Calls free what they allocate: after thousands of calls of every kind, on each transport,
//! the memory the process holds is what it held after the first hundred. (A cycle between a
//! call's cancellation token and its response sink once kept every finished call alive.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use common::*;
use rust_rpc_testdata::ours::services::CalculatorClient;

/// Counts the bytes allocated and not yet freed.
struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

async fn calls_of_every_kind(
    client: &CalculatorClient<Arc<dyn rust_rpc::RpcChannel>>,
    rounds: usize,
) {
    for i in 0..rounds as i64 {
        assert_eq!(client.double(number(i)).await.unwrap().value, 2 * i);
        let mut countdown = client.countdown(number(2)).await.unwrap();
        while countdown.message().await.unwrap().is_some() {}
        assert_eq!(
            client.sum(vec![number(1), number(2)]).await.unwrap().value,
            3
        );
        let (sender, requests) = rust_rpc::stream::channel();
        let mut totals = client.running_total(requests).await.unwrap();
        sender.send(number(4)).await.unwrap();
        assert_eq!(totals.message().await.unwrap().unwrap().value, 4);
        drop(sender);
        assert!(totals.message().await.unwrap().is_none());
        // A call abandoned half way: dropped while its stream still runs.
        let mut endless = client.countdown(number(-10)).await.unwrap();
        assert!(endless.message().await.unwrap().is_some());
    }
}

#[test]
fn calls_free_what_they_allocate() {
    // One thread, so that no other test's allocations land in the count.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = start(Arc::default()).await;
        for transport in TRANSPORTS {
            let client = CalculatorClient::new(transport.channel(&server, Arc::default()).await);
            calls_of_every_kind(&client, 100).await;
            // Let abandoned handlers see their cancellation and end.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let before = LIVE.load(Ordering::SeqCst);
            calls_of_every_kind(&client, 1000).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let grown = LIVE.load(Ordering::SeqCst) - before;
            // 5,000 calls: a leak of even 20 bytes a call would show.
            assert!(
                grown < 100_000,
                "{transport:?}: {grown} bytes more after 5,000 calls"
            );
        }
        server.shutdown().await.unwrap();
    });
}

//! The revocation barrier across real `warden` processes on one database (docs/adr/0015): once
//! "log out of all devices" has answered, no process accepts any of those sessions — not one
//! that was frozen during the call, not one cut off from the database, not one started after
//! it, and not while a long transaction elsewhere holds every view back (that one in
//! `tests/horizon`, a binary of its own).
//!
//! How these tests fail against a cache without the barrier: a debug build started with
//! `WARDEN_UNSAFE_NO_REVOCATION_BARRIER=1` keeps its cache and follower but neither waits for
//! the other processes nor stops trusting its cache when its lease runs out.
//! `without_the_barrier_a_partitioned_process_answers_from_its_stale_cache` runs the partition
//! scenario that way and sees the revoked sessions accepted; the frozen-process test checks that
//! the call returned only after the frozen process woke, which such a cache does not do.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::faults::Server;
use crate::helpers::fresh_database;
use crate::proxy::Proxy;
use crate::revocations::{log_out_of_all_devices, sessions, statuses, warm};

fn upstream_of(database_url: &str) -> SocketAddr {
    let rest = database_url.split_once('@').expect("user@host").1;
    let host = rest.split_once('/').expect("host/database").0;
    host.parse().expect("host:port")
}

#[tokio::test]
async fn a_revocation_on_one_process_is_refused_by_the_other_two_on_the_very_next_request() {
    let mut a = Server::new(fresh_database().await);
    let mut b = a.sibling(a.database_url.clone());
    let mut c = a.sibling(a.database_url.clone());
    for server in [&mut a, &mut b, &mut c] {
        server.start().await;
    }
    let tokens = sessions(&a, "three@example.com", 4).await;
    warm(&[&a, &b, &c], &tokens).await;

    let (status, body) = log_out_of_all_devices(&a, &tokens[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revoked"], 4);
    for server in [&b, &c, &a] {
        assert_eq!(
            statuses(server, &tokens).await,
            vec![StatusCode::UNAUTHORIZED; 4],
            "refused at once by every process"
        );
    }
}

#[tokio::test]
async fn a_process_frozen_during_log_out_of_all_devices_refuses_the_sessions_when_it_wakes() {
    let mut a = Server::new(fresh_database().await);
    let mut b = a.sibling(a.database_url.clone());
    a.start().await;
    b.start().await;
    let tokens = sessions(&a, "frozen@example.com", 3).await;
    warm(&[&a, &b], &tokens).await;

    b.signal("STOP");
    let started = Instant::now();
    let revoke = tokio::spawn({
        let url = a.url("/v1/me/sessions/revoke-all");
        let token = tokens[0].clone();
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("answered");
            (response.status(), Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let woke = Instant::now();
    b.signal("CONT");
    let (status, answered) = revoke.await.expect("task");
    assert_eq!(status, StatusCode::OK);
    assert!(
        answered >= woke,
        "the revocation answered after {:?}, before the frozen process woke at {:?}",
        answered - started,
        woke - started
    );
    assert_eq!(
        statuses(&b, &tokens).await,
        vec![StatusCode::UNAUTHORIZED; 3],
        "the woken process refuses every revoked session"
    );
    println!(
        "log out of all devices with a process frozen for 3 s: answered after {:?}",
        answered - started
    );
}

#[tokio::test]
async fn a_process_frozen_past_its_lease_is_not_waited_for_and_refuses_when_it_wakes() {
    let mut a = Server::new(fresh_database().await);
    let mut b = a.sibling(a.database_url.clone());
    a.start().await;
    b.start().await;
    let tokens = sessions(&a, "long.frozen@example.com", 2).await;
    warm(&[&a, &b], &tokens).await;

    b.signal("STOP");
    let started = Instant::now();
    let (status, _) = log_out_of_all_devices(&a, &tokens[0]).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(
        took < Duration::from_secs(12),
        "a frozen process's lease runs out; the call does not wait for it ({took:?})"
    );
    // It wakes after the call answered, with every revoked session still in its memory.
    tokio::time::sleep(Duration::from_secs(13).saturating_sub(took)).await;
    b.signal("CONT");
    assert_eq!(
        statuses(&b, &tokens).await,
        vec![StatusCode::UNAUTHORIZED; 2],
        "a process that lost its lease does not answer from its cache"
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Every connection closed: the process notices at once.
    Cut,
    /// Nothing passes and nothing is closed: only the lease tells.
    Partition,
}

/// Cuts `b` off from the database, logs out of all devices through `a`, and answers what `b`
/// said of the revoked sessions while cut off and after reconnecting.
async fn cut_off_scenario(
    fault: Fault,
    barrier: bool,
) -> (StatusCode, Vec<StatusCode>, Vec<StatusCode>) {
    let database_url = fresh_database().await;
    let proxy = Proxy::start(upstream_of(&database_url).port())
        .await
        .expect("a proxy");
    let mut a = Server::new(database_url.clone());
    if !barrier {
        a.env
            .push(("WARDEN_UNSAFE_NO_REVOCATION_BARRIER".into(), "1".into()));
    }
    let mut b = a.sibling(proxy.url_for(&database_url));
    a.start().await;
    b.start().await;
    let tokens = sessions(&a, "cut.off@example.com", 2).await;
    warm(&[&a, &b], &tokens).await;

    match fault {
        Fault::Cut => proxy.cut(),
        Fault::Partition => proxy.partition(),
    }
    let (status, _) = log_out_of_all_devices(&a, &tokens[0]).await;
    let while_cut = statuses(&b, &tokens).await;
    proxy.heal();
    let mut after = Vec::new();
    for _ in 0..100 {
        after = statuses(&b, &tokens).await;
        if after.iter().all(|s| *s == StatusCode::UNAUTHORIZED) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (status, while_cut, after)
}

async fn assert_no_stale_answer(fault: Fault) {
    let (status, while_cut, after) = cut_off_scenario(fault, true).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the revocation is confirmed once the lease runs out"
    );
    assert!(
        !while_cut.contains(&StatusCode::OK),
        "a process that cannot follow the log answers nothing from memory: {while_cut:?}"
    );
    assert_eq!(
        after,
        vec![StatusCode::UNAUTHORIZED; 2],
        "refused after reconnecting"
    );
}

#[tokio::test]
async fn a_process_whose_connections_are_cut_serves_no_stale_answer_then_or_after_reconnecting() {
    assert_no_stale_answer(Fault::Cut).await;
}

#[tokio::test]
async fn a_process_silently_partitioned_from_the_database_serves_no_stale_answer() {
    assert_no_stale_answer(Fault::Partition).await;
}

#[tokio::test]
async fn without_the_barrier_a_partitioned_process_answers_from_its_stale_cache() {
    let (_, while_cut, _) = cut_off_scenario(Fault::Partition, false).await;
    assert!(
        while_cut.contains(&StatusCode::OK),
        "the test above must be able to fail: without the barrier the revoked sessions pass \
         ({while_cut:?})"
    );
}

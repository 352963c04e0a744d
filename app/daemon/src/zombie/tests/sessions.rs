//! Sessions on the zombie: idle timeouts, only pairing while unpaired,
//! the lease, the user's consent, and no lock poisoning.

use super::*;

#[tokio::test(start_paused = true)]
async fn an_unpaired_session_ends_after_its_idle_timeout() {
    let z = zombie(false);
    let (mut m, task) = z.connect(&master(1));
    assert_eq!(welcome(&mut m).await, None);
    let start = Instant::now();
    let bye = until_closed(&mut m).await.expect("a goodbye");
    assert!(bye.contains("idle"), "{bye}");
    assert_eq!(start.elapsed().as_secs(), UNPAIRED_IDLE_TIMEOUT.as_secs());
    task.await.unwrap().unwrap();
    assert!(z.zombie.sessions.lock().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_unpaired_session_ends_at_its_lifetime_however_busy() {
    let z = zombie(false);
    let (mut m, _task) = z.connect(&master(1));
    welcome(&mut m).await;
    let start = Instant::now();
    // A PairStart every 14 s (no code is active: each fails) keeps it from
    // being idle, but not past its lifetime.
    let bye = loop {
        tokio::select! {
            answer = m.recv() => match answer {
                Ok(Message::PairFailed { .. }) => {}
                Ok(Message::Bye { reason }) => break Some(reason),
                Err(_) => break None,
                Ok(other) => panic!("unexpected {other:?}"),
            },
            _ = tokio::time::sleep(Duration::from_secs(14)) => {
                let start = Message::PairStart { name: "x".into(), spake: vec![1; 33] };
                let _ = m.send(&start).await;
            }
        }
    };
    let bye = bye.expect("a goodbye");
    assert!(bye.contains("unpaired"), "{bye}");
    assert_eq!(
        start.elapsed().as_secs(),
        UNPAIRED_SESSION_LIFETIME.as_secs()
    );
}

#[tokio::test(start_paused = true)]
async fn an_unpaired_master_may_only_pair() {
    let z = zombie(true);
    for ask in [
        Message::Ping { seq: 1 },
        Message::Dominate {
            level: Level::Partial,
        },
    ] {
        let (mut m, _task) = z.connect(&master(1));
        welcome(&mut m).await;
        m.send(&ask).await.unwrap();
        match m.recv().await.unwrap() {
            Message::Refused { reason } => assert!(reason.contains("not paired"), "{reason}"),
            other => panic!("{ask:?} answered with {other:?}"),
        }
        assert!(m.recv().await.is_err(), "the session ends after a refusal");
    }
    assert!(z.zombie.dominion.lock().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_paired_session_stays_past_the_unpaired_timeout_and_ends_when_idle() {
    let z = zombie(false);
    let laptop = master(1);
    z.trust(&laptop, "laptop", Level::Complete);
    let (mut m, _task) = z.connect(&laptop);
    assert_eq!(welcome(&mut m).await, Some(Level::Complete));
    tokio::time::sleep(UNPAIRED_IDLE_TIMEOUT * 2).await;
    m.send(&Message::Ping { seq: 1 }).await.unwrap();
    assert_eq!(m.recv().await.unwrap(), Message::Pong { seq: 1 });
    let quiet = Instant::now();
    let bye = until_closed(&mut m).await.expect("a goodbye");
    assert!(bye.contains("idle"), "{bye}");
    assert_eq!(quiet.elapsed().as_secs(), PAIRED_IDLE_TIMEOUT.as_secs());
}

#[tokio::test(start_paused = true)]
async fn the_lease_ends_ten_seconds_after_the_master_fell_silent() {
    let z = zombie(true);
    let laptop = master(1);
    z.trust(&laptop, "laptop", Level::Partial);
    let (mut m, task) = dominated(&z, &laptop).await;
    assert_eq!(
        z.zombie
            .dominion
            .lock()
            .as_ref()
            .map(|d| d.master_name.clone()),
        Some("laptop".into())
    );
    // Pings keep it well past the lease.
    for seq in 0..10 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        m.send(&Message::Ping { seq }).await.unwrap();
        assert_eq!(m.recv().await.unwrap(), Message::Pong { seq });
    }
    let silent = Instant::now();
    assert!(
        until_closed(&mut m).await.is_none(),
        "a lease ends without goodbye"
    );
    assert_eq!(silent.elapsed().as_secs(), LEASE.as_secs());
    task.await.unwrap().unwrap();
    assert!(z.zombie.dominion.lock().is_none(), "the zombie let go");
}

#[tokio::test(start_paused = true)]
async fn the_user_refuses_or_does_not_answer_in_time() {
    let z = zombie(false);
    let laptop = master(1);
    z.trust(&laptop, "laptop", Level::Complete);

    let (mut m, _task) = ask_domination(&z, &laptop).await;
    assert_eq!(
        m.recv().await.unwrap(),
        Message::Asking {
            timeout_s: CONSENT_TIMEOUT.as_secs() as u32
        }
    );
    let ask = z.zombie.ask_info().expect("the request is shown");
    assert_eq!(
        (ask.master.as_str(), ask.level),
        ("laptop", Level::Complete)
    );
    let no = super::super::consent::Decision {
        accept: false,
        show_apps: false,
    };
    assert_eq!(z.zombie.answer(no).unwrap(), "laptop");
    match m.recv().await.unwrap() {
        Message::Refused { reason } => assert!(reason.contains("refused"), "{reason}"),
        other => panic!("{other:?}"),
    }

    let (mut m, _task) = ask_domination(&z, &laptop).await;
    assert!(matches!(m.recv().await.unwrap(), Message::Asking { .. }));
    let asked = Instant::now();
    match m.recv().await.unwrap() {
        Message::Refused { reason } => assert!(reason.contains("answered within"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(asked.elapsed().as_secs(), CONSENT_TIMEOUT.as_secs());
    assert!(z.zombie.ask_info().is_none() && z.zombie.dominion.lock().is_none());
}

#[tokio::test]
async fn a_panic_while_a_lock_is_held_does_not_break_the_next_request() {
    let z = zombie(false);
    let zz = z.zombie.clone();
    let panicked = std::thread::spawn(move || {
        let _trust = zz.trust.lock();
        let _sessions = zz.sessions.lock();
        panic!("a bug in one session");
    })
    .join();
    assert!(panicked.is_err());
    let status = z.zombie.status();
    assert_eq!(status.trusted, 0);
}

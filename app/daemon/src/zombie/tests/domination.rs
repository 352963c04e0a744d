//! The master's domination hand-shake and driver against the zombie's
//! rules, and against zombies that fall silent.

use super::*;
use crate::domination::Dominated;

/// Dominates the zombie at the other end of `master_end`, known as
/// `zombie`; returns the outcome and the progress told meanwhile.
async fn start_domination(
    dominions: &Arc<Dominions>,
    master_end: MemoryPeer,
    zombie: PairedZombie,
    level: Level,
) -> (crate::error::Result<Dominated>, Vec<String>) {
    let zt_start = std::time::Instant::now();
    let mut progress = Vec::new();
    let done = dominions
        .start(master_end, zombie, level, zt_start, &mut progress)
        .await;
    (done, progress)
}

#[tokio::test(start_paused = true)]
async fn the_master_and_the_zombie_agree_on_domination_and_release() {
    let z = zombie(true);
    let laptop = master(1);
    z.trust(&laptop, "laptop", Level::Complete);
    let (master_end, zombie_task) = z.connect(&laptop);
    let mut master_end = master_end;
    welcome(&mut master_end).await;
    let dir = TempDir::new();
    let shutdown = CancellationToken::new();
    let tasks = Tasks::new(dir.0.join("run"), shutdown.clone());
    let dominions = Dominions::new(tasks, dir.0.join("exports.toml"), shutdown);
    let desk = PairedZombie {
        name: "desk".into(),
        key: z.identity.public(),
    };
    let (done, progress) =
        start_domination(&dominions, master_end, desk.clone(), Level::Complete).await;
    let done = done.unwrap();
    assert_eq!((done.name.as_str(), done.level), ("desk", Level::Complete));
    let parts: Vec<&str> = done.timing.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(parts, ["zt", "fs", "xt"]);
    assert!(
        progress.iter().any(|p| p.contains("could not mount")),
        "{progress:?}"
    );
    assert_eq!(dominions.level_of(&desk.key), Some(Level::Complete));
    // The driver's pings keep the lease for a minute.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(z.zombie.dominion.lock().is_some(), "the lease held");
    assert_eq!(dominions.find("desk"), Some(desk.key));
    assert_eq!(dominions.release(&desk.key).await.unwrap(), "desk");
    // The master closes the session once the zombie confirmed.
    let _ = zombie_task.await.unwrap();
    assert!(z.zombie.dominion.lock().is_none());
    assert!(dominions.list().is_empty());
}

/// A zombie that accepts, then says nothing more.
async fn silent_zombie(mut peer: MemoryPeer) {
    assert!(matches!(peer.recv().await, Ok(Message::Dominate { .. })));
    peer.send(&Message::Dominated {
        level: Level::Partial,
    })
    .await
    .unwrap();
    peer.send(&Message::MountFailed {
        reason: "test".into(),
    })
    .await
    .unwrap();
    assert!(matches!(peer.recv().await, Ok(Message::Tasks { .. })));
    peer.send(&Message::Shown { viewers: 0 }).await.unwrap();
    while peer.recv().await.is_ok() {}
}

fn master_and_fake_zombie() -> (MemoryPeer, MemoryPeer, PairedZombie) {
    let zombie_key = Identity::generate().unwrap().public();
    let info = |key, name: &str| PeerInfo {
        key,
        announced_name: name.into(),
        addr: "10.0.0.2:4000".parse().unwrap(),
        handshake_hash: HASH,
    };
    let (master_end, zombie_end) = memory::pair(
        info(Identity::generate().unwrap().public(), "laptop"),
        info(zombie_key, "desk"),
    );
    (
        master_end,
        zombie_end,
        PairedZombie {
            name: "desk".into(),
            key: zombie_key,
        },
    )
}

fn dominions() -> (Arc<Dominions>, TempDir) {
    let dir = TempDir::new();
    let shutdown = CancellationToken::new();
    let tasks = Tasks::new(dir.0.join("run"), shutdown.clone());
    (
        Dominions::new(tasks, dir.0.join("exports.toml"), shutdown),
        dir,
    )
}

#[tokio::test(start_paused = true)]
async fn the_master_gives_up_a_zombie_silent_for_its_limit() {
    let (dominions, _dir) = dominions();
    let (master_end, zombie_end, desk) = master_and_fake_zombie();
    tokio::spawn(silent_zombie(zombie_end));
    let (done, _) = start_domination(&dominions, master_end, desk.clone(), Level::Partial).await;
    done.unwrap();
    let start = Instant::now();
    while dominions.level_of(&desk.key).is_some() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = start.elapsed();
    assert!(
        gone >= SILENCE_LIMIT && gone <= SILENCE_LIMIT + Duration::from_secs(3),
        "{gone:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_master_names_the_zombie_that_does_not_answer_and_what() {
    let (dominions, _dir) = dominions();
    // No answer to Dominate at all.
    let (master_end, mut zombie_end, desk) = master_and_fake_zombie();
    tokio::spawn(async move { while zombie_end.recv().await.is_ok() {} });
    let start = Instant::now();
    let (done, _) = start_domination(&dominions, master_end, desk.clone(), Level::Partial).await;
    let err = done.err().expect("no answer is an error");
    assert_eq!(
        err.to_string(),
        format!(
            "zombie desk did not answer Dominate within {} s",
            ANSWER_TIMEOUT.as_secs()
        )
    );
    assert_eq!(start.elapsed().as_secs(), ANSWER_TIMEOUT.as_secs());

    // A zombie asking its user for an hour is waited for at most the cap.
    let (master_end, mut zombie_end, desk) = master_and_fake_zombie();
    tokio::spawn(async move {
        let _ = zombie_end.recv().await;
        zombie_end
            .send(&Message::Asking { timeout_s: 3600 })
            .await
            .unwrap();
        while zombie_end.recv().await.is_ok() {}
    });
    let start = Instant::now();
    let (done, progress) = start_domination(&dominions, master_end, desk, Level::Partial).await;
    let err = done.err().expect("no decision is an error");
    assert!(
        err.to_string()
            .contains("did not answer Dominate (its user's decision)"),
        "{err}"
    );
    let cap = crate::limits::MAX_CONSENT_WAIT + crate::limits::CONSENT_MARGIN;
    assert_eq!(start.elapsed().as_secs(), cap.as_secs());
    assert!(
        progress[0].contains(&crate::limits::MAX_CONSENT_WAIT.as_secs().to_string()),
        "{progress:?}"
    );
}

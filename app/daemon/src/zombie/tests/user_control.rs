//! The zombie's user stays in control: a master that leaves while the user
//! is asked withdraws its request at once; the user ends a domination, and
//! the master releases the zombie (or, if it does not, the zombie lets go
//! by itself after [`USER_RELEASE_WAIT`]).

use super::*;
use crate::domination::Progress;
use crate::limits::USER_RELEASE_WAIT;

/// Progress that records what is told and is withdrawn on demand.
struct Withdrawing {
    told: Vec<String>,
    token: CancellationToken,
}

impl Progress for Withdrawing {
    async fn progress(&mut self, message: String) -> crate::error::Result<()> {
        self.told.push(message);
        Ok(())
    }

    async fn asking(&mut self, zombie: &str, timeout: Duration) -> crate::error::Result<()> {
        self.told
            .push(format!("{zombie} asks for {} s", timeout.as_secs()));
        Ok(())
    }

    fn withdrawn(&self) -> CancellationToken {
        self.token.clone()
    }
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
async fn a_master_that_gives_up_waiting_withdraws_its_request_at_once() {
    let z = zombie(false);
    let laptop = master(1);
    z.trust(&laptop, "laptop", Level::Complete);
    let (mut master_end, zombie_task) = z.connect(&laptop);
    welcome(&mut master_end).await;
    let (dominions, _dir) = dominions();
    let desk = PairedZombie {
        name: "desk".into(),
        key: z.identity.public(),
    };
    let token = CancellationToken::new();
    let asking = tokio::spawn({
        let dominions = dominions.clone();
        let token = token.clone();
        async move {
            let mut out = Withdrawing {
                told: Vec::new(),
                token,
            };
            let done = dominions
                .start(
                    master_end,
                    desk,
                    Level::Complete,
                    std::time::Instant::now(),
                    &mut out,
                )
                .await;
            (done.err().map(|e| e.to_string()), out.told)
        }
    });
    while z.zombie.ask_info().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Ctrl-C on `zos dominate`: the client is gone.
    let withdrawn_at = Instant::now();
    token.cancel();
    let (err, told) = asking.await.unwrap();
    assert_eq!(
        err.as_deref(),
        Some("the request to dominate desk was withdrawn")
    );
    assert_eq!(told, ["desk asks for 45 s"]);
    let ended = zombie_task.await.unwrap();
    assert!(
        ended.is_err_and(|e| e.to_string().contains("withdrew its request")),
        "the zombie's session ends saying why"
    );
    assert!(z.zombie.ask_info().is_none(), "nothing is asked any more");
    assert!(z.zombie.dominion.lock().is_none());
    assert!(
        withdrawn_at.elapsed() < Duration::from_millis(100),
        "withdrawn at once, not at the consent timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn the_zombies_user_ends_the_domination_and_the_master_releases_it() {
    users_release(false).await;
}

#[tokio::test(start_paused = true)]
async fn the_zombies_user_ends_the_domination_through_the_masters_own_release() {
    users_release(true).await;
}

/// The zombie's user releases it; with `hook`, the master's release runs
/// as the daemon's does (`on_release_asked`: `zos release` on the master).
async fn users_release(hook: bool) {
    let z = zombie(true);
    let laptop = master(1);
    z.trust(&laptop, "laptop", Level::Complete);
    let (mut master_end, zombie_task) = z.connect(&laptop);
    welcome(&mut master_end).await;
    let (dominions, _dir) = dominions();
    let desk = PairedZombie {
        name: "desk".into(),
        key: z.identity.public(),
    };
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    if hook {
        let weak = Arc::downgrade(&dominions);
        let asked = asked.clone();
        dominions.on_release_asked(Box::new(move |zombie, reason| {
            asked.lock().unwrap().push((zombie.name.clone(), reason));
            if let Some(dominions) = weak.upgrade() {
                tokio::spawn(async move { dominions.release(&zombie.key).await });
            }
        }));
    }
    let mut told = Vec::new();
    dominions
        .start(
            master_end,
            desk.clone(),
            Level::Complete,
            std::time::Instant::now(),
            &mut told,
        )
        .await
        .unwrap();
    assert!(dominions.level_of(&desk.key).is_some());
    // A user that names another master is told who dominates.
    let err = z.zombie.user_release("someone").await.unwrap_err();
    assert!(err.to_string().contains("dominated by laptop"), "{err}");
    let start = Instant::now();
    assert_eq!(z.zombie.user_release("").await.unwrap(), "laptop");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the master released it at once"
    );
    assert!(z.zombie.dominion.lock().is_none());
    // The master ran its release and closed the session.
    let _ = zombie_task.await.unwrap();
    assert!(dominions.list().is_empty());
    if hook {
        assert_eq!(
            asked.lock().unwrap().as_slice(),
            [(
                "desk".to_string(),
                "the user of z1 ended the domination".to_string()
            )]
        );
    }
    // Nothing left to release.
    let err = z.zombie.user_release("").await.unwrap_err();
    assert!(err.to_string().contains("not dominated"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_master_that_does_not_release_its_zombie_loses_it_after_the_wait() {
    let z = zombie(true);
    let laptop = master(1);
    z.trust(&laptop, "laptop", Level::Partial);
    let (mut m, zombie_task) = dominated(&z, &laptop).await;
    // A master that keeps the lease but never answers the user's release.
    let heard = tokio::spawn(async move {
        let mut heard = Vec::new();
        let mut seq = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {
                    seq += 1;
                    if m.send(&Message::Ping { seq }).await.is_err() {
                        return heard;
                    }
                }
                message = m.recv() => match message {
                    Ok(Message::Pong { .. }) => {}
                    Ok(other) => heard.push(other),
                    Err(_) => return heard,
                },
            }
        }
    });
    let start = Instant::now();
    assert_eq!(z.zombie.user_release("laptop").await.unwrap(), "laptop");
    let waited = start.elapsed();
    assert!(
        waited >= USER_RELEASE_WAIT && waited < USER_RELEASE_WAIT + Duration::from_secs(1),
        "{waited:?}"
    );
    zombie_task.await.unwrap().unwrap();
    let heard = heard.await.unwrap();
    match &heard[..] {
        [
            Message::Release { reason: asked },
            Message::Bye { reason: bye },
        ] => {
            assert!(
                asked.contains("the user of z1 ended the domination"),
                "{asked}"
            );
            assert!(bye.contains("did not release it within 60 s"), "{bye}");
        }
        other => panic!("the master heard {other:?}"),
    }
    assert!(z.zombie.dominion.lock().is_none());
}

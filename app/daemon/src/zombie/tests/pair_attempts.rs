//! Pairing attempts: the rate limit per address and key, and the record
//! the zombie's user sees.

use super::*;

/// One pairing attempt with `code` by `m`; the zombie's last answer.
async fn try_pairing(z: &TestZombie, m: &TestMaster, code: &str) -> Message {
    let (mut peer, _task) = z.connect(m);
    welcome(&mut peer).await;
    let (state, spake) =
        zos_netproto::pairing::master_start(code, &m.identity.public(), &z.identity.public());
    peer.send(&Message::PairStart {
        name: "laptop".into(),
        spake,
    })
    .await
    .unwrap();
    let challenge = match peer.recv().await.unwrap() {
        Message::PairChallenge { spake } => spake,
        other => return other,
    };
    let key = state.finish(&challenge).unwrap();
    let mac = zos_netproto::pairing::confirmation(&key, Side::Master, &HASH);
    peer.send(&Message::PairConfirm { mac }).await.unwrap();
    peer.recv().await.unwrap()
}

fn reason(m: &Message) -> &str {
    match m {
        Message::PairFailed { reason } => reason,
        other => panic!("expected PairFailed, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_code_burner_is_slowed_to_its_limit_and_the_next_code_survives() {
    let z = zombie(false);
    let attacker = master(66);
    *z.zombie.pending.lock() = Some(PendingCode::issue(Level::Complete));
    let mut answers = Vec::new();
    for k in 0..10 {
        answers.push(try_pairing(&z, &attacker, &format!("{k:06}")).await);
    }
    let limited = answers
        .iter()
        .filter(|a| reason(a).contains("too many"))
        .count();
    assert_eq!(limited, 10 - PAIR_ATTEMPTS_PER_KEY, "{answers:?}");
    // A fresh code is untouched by the attacker's further tries.
    *z.zombie.pending.lock() = Some(PendingCode::issue(Level::Complete));
    let code = z.zombie.pending.lock().as_ref().unwrap().code().to_string();
    for k in 0..5 {
        assert!(reason(&try_pairing(&z, &attacker, &format!("{k:06}")).await).contains("too many"));
    }
    assert_eq!(z.zombie.status().pairing.map(|p| p.attempts_left), Some(3));
    // The user's master, from its own address, pairs with it.
    let laptop = master(1);
    assert!(matches!(
        try_pairing(&z, &laptop, &code).await,
        Message::PairDone {
            level: Level::Complete,
            ..
        }
    ));
    // The user sees who tried.
    let shown = z.zombie.status().pairing_attempts;
    assert!(shown.iter().all(|a| a.addr == "10.0.0.66"), "{shown:?}");
    let whys: Vec<&str> = shown.iter().map(|a| a.why.as_str()).collect();
    assert!(
        whys.contains(&"wrong code") && whys.iter().any(|w| w.contains("too many")),
        "{whys:?}"
    );
    assert_eq!(shown.iter().map(|a| a.count).sum::<u32>(), 15);
}

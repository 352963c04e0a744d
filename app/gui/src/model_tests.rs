//! The model's unit tests: events in, state out.

use super::*;

pub(crate) fn host(name: &str) -> HostInfo {
    HostInfo {
        instance: format!("{name}._zos._tcp.local."),
        name: name.into(),
        host: format!("{name}.local."),
        version: 1,
        fingerprint: format!("{name}-fp"),
        addrs: vec![],
        port: 4000,
        cores: 4,
        load1: 0.5,
        mem_free_mib: 2048,
        levels: vec![Level::Partial, Level::Complete],
        dominated: None,
        revoked: false,
    }
}

#[test]
fn hosts_are_sorted_and_departed_state_is_dropped() {
    let mut m = Model::default();
    m.apply(Event::Hosts(Ok(vec![host("z2"), host("z1")])));
    assert_eq!(m.hosts[0].name, "z1");
    let z2 = m.hosts[1].instance.clone();
    let cmd = m.start_ping(&z2);
    assert_eq!(cmd, Command::Ping { host: z2.clone() });
    m.selected = Some(z2.clone());
    m.apply(Event::Hosts(Ok(vec![host("z1")])));
    assert!(m.pings.is_empty());
    assert_eq!(m.selected, None);
}

#[test]
fn shown_set_is_logged_only_on_change() {
    let mut m = Model::default();
    assert!(!m.log_shown_hosts(), "nothing known yet");
    m.apply(Event::Hosts(Ok(vec![host("z1")])));
    assert!(m.log_shown_hosts());
    m.apply(Event::Hosts(Ok(vec![host("z1")])));
    assert!(!m.log_shown_hosts());
    m.apply(Event::Hosts(Ok(vec![])));
    assert!(m.log_shown_hosts());
}

#[test]
fn pairing_needs_six_digits_and_a_present_host() {
    let mut m = Model::default();
    m.apply(Event::Hosts(Ok(vec![host("z1")])));
    m.open_pairing(None);
    m.pair.code = "12a34 5678".into();
    m.clean_code();
    assert_eq!(m.pair.code, "123456");
    let cmd = m.start_pairing().expect("ready");
    assert!(matches!(cmd, Command::Pair { ref code, .. } if code == "123456"));
    assert_eq!(m.start_pairing(), None, "busy");
    let host = m.pair.host.clone().unwrap();
    m.apply(Event::Paired {
        host,
        result: Err("wrong code".into()),
    });
    assert_eq!(m.pair.state, PairState::Failed("wrong code".into()));
}

fn task(id: u64) -> TaskInfo {
    TaskInfo {
        id,
        kind: "shared".into(),
        command: vec!["xterm".into()],
        display: Some(":3".into()),
        state: "running".into(),
        pid: Some(77),
        host: None,
        ..TaskInfo::default()
    }
}

#[test]
fn shared_apps_get_a_viewer_only_on_request() {
    let mut m = Model::default();
    m.apply(Event::Tasks(Ok(vec![task(1), task(2)])));
    assert_eq!(m.take_views(), vec![], "none opens by itself");
    m.view(2);
    assert_eq!(m.take_views(), vec![Command::View { task: 2 }]);
    assert_eq!(m.take_views(), vec![]);
}

#[test]
fn tasks_are_forgotten_while_the_daemon_is_down() {
    let mut m = Model::default();
    m.apply(Event::Tasks(Ok(vec![task(1)])));
    m.apply(Event::Tasks(Err("no daemon answers".into())));
    assert!(m.tasks.is_empty());
}

#[test]
fn a_cancelled_domination_leaves_no_error() {
    let mut m = Model::default();
    m.apply(Event::Hosts(Ok(vec![host("z1")])));
    let z1 = m.hosts[0].instance.clone();
    m.start_domination(&z1, false);
    m.apply(Event::DominationAsking {
        host: z1.clone(),
        timeout: Duration::from_secs(45),
    });
    assert!(matches!(m.dominations[&z1], Pending::Asking { .. }));
    assert_eq!(
        m.cancel_domination(&z1),
        Some(Command::CancelDomination { host: z1.clone() })
    );
    m.apply(Event::Domination {
        host: z1.clone(),
        result: Err("daemon closed the control connection".into()),
    });
    assert!(!m.dominations.contains_key(&z1));
}

#[test]
fn daemon_errors_are_kept_until_it_answers() {
    let mut m = Model::default();
    m.apply(Event::Status(Err("no daemon answers".into())));
    assert!(m.daemon_error.is_some());
    m.apply(Event::Hosts(Err("no daemon answers".into())));
    assert!(m.hosts.is_empty());
}

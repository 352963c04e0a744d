//! Issue 2, discovery checked by a tool no one here wrote: `avahi-browse`
//! in a third namespace must see the zombie and its TXT keys.

mod common;

use common::avahi::Avahi;
use common::{Lan, secs, zos};

#[test]
fn avahi_browse_sees_the_zombie_and_its_txt_keys() {
    let lan = Lan::new(&["z1", "obs"]);
    let (z1, obs) = (lan.host("z1"), lan.host("obs"));
    let zombie = zos::start_zombie(z1, "avahi-seen", &[]);
    let fp = zos::fingerprint(z1);
    let observer = Avahi::start(obs);
    let seen = observer
        .wait_for_txt("_zos._tcp", "name", "avahi-seen", secs(20))
        .unwrap_or_else(|| {
            panic!(
                "avahi-browse never resolved the zombie; last browse: {:#?}",
                observer.browse("_zos._tcp")
            )
        });
    assert!(
        seen.name.contains("avahi-seen"),
        "the instance should carry the zombie's name: {seen:#?}"
    );
    assert_eq!(seen.address, z1.addr.to_string(), "{seen:#?}");
    assert_eq!(seen.port, zombie.port, "{seen:#?}");
    for key in ["v", "fp", "host", "name", "cores", "load", "mem", "levels"] {
        assert!(
            seen.txt.contains_key(key),
            "TXT key {key:?} missing: {:?}",
            seen.txt
        );
    }
    assert_eq!(seen.txt["v"], zos_netproto::PROTOCOL_VERSION.to_string());
    assert_eq!(seen.txt["fp"], fp);
    assert_eq!(seen.txt["name"], "avahi-seen");
    assert!(
        seen.txt["cores"].parse::<u32>().is_ok_and(|c| c > 0),
        "{:?}",
        seen.txt
    );
    assert!(
        seen.txt["mem"].parse::<u64>().is_ok_and(|m| m > 0),
        "{:?}",
        seen.txt
    );
    assert!(seen.txt["load"].parse::<f64>().is_ok(), "{:?}", seen.txt);
    let levels: Vec<&str> = seen.txt["levels"].split(',').collect();
    assert!(
        levels.contains(&"complete") && levels.contains(&"partial"),
        "{:?}",
        seen.txt
    );
}

//! Images with every kind of shared object (socket queues, eventfd, timerfd, epoll, memfd,
//! System V IPC, /dev/shm files, locks, POSIX timers, threads) changed as a hostile peer
//! would: each restore is refused or harmless; none panics, hangs or leaves a process. (One
//! test in its own process: it counts the process's children.)

mod common;

#[test]
fn mutated_images_with_every_kind_of_object_are_refused_or_harmless() {
    let dir = common::TempDir::new("mutate-kinds");
    for (i, (name, args)) in [
        ("unixpairs", vec![]),
        ("anonfds", vec![]),
        ("memfds", vec![]),
        ("ipc", vec![]),
        ("timers", vec![]),
        ("locks", vec![dir.path()]),
    ]
    .iter()
    .enumerate()
    {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::mutate::mutate(name, &args, 0x5eed_1000 + i as u64, 40);
    }
}

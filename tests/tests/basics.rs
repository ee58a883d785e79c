//! Start, list, receive, show: the everyday path.

use jobctl_tests::TestHome;

#[test]
fn start_wait_receive_echo() {
    let home = TestHome::new();
    let id = home.start(&["--", "echo", "hello"]);
    home.ok(&["wait", &id.to_string()]);
    assert_eq!(home.ok(&["receive", &id.to_string()]), "hello\n");
}

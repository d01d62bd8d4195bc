use topicguard::{Engine, Identity, Policy, Request};
fn main() {
    let policy = Policy::load("policies/xfinity.policy").unwrap_or_else(|e| {
        match e {
            topicguard::policy::LoadError::Invalid(d) => {
                eprintln!("{}", d.render_plain());
            }
            other => eprintln!("{other}"),
        };
        std::process::exit(2)
    });
    print!("{}", policy.warnings.render_plain());
    let engine = Engine::new(&policy.checked).unwrap();
    println!("{}", engine.automaton().dump(&policy.checked));
    let id = Identity::asserted("mobile", [("pid", "P1"), ("aid", "A1"), ("jti", "J1")]);
    let s = engine.bind(&id, "xfi:P1_A1:clt:J1");
    for r in [
        Request::Connect,
        Request::publish("c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/on"),
        Request::publish("c/xfi/P2_A1/lights/xfi:P1_A1:clt:J1/on"),
        Request::subscribe("c/xfi/P1_A1/xfi:P1_A1:clt:J1/+/+/+"),
        Request::subscribe("c/xfi/P1_A1/#"),
        Request::subscribe("c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success"),
        Request::publish("c/xfi/P1_A1/admin/xfi:P1_A1:clt:J1/x"),
        Request::receive("c/xfi/P1_A1/xfi:P1_A1:clt:J1/locks/r1/failure"),
    ] {
        println!("{}", engine.explain(&s, r));
    }
    let g = Identity::asserted("service", [("sid", "lights")]);
    let s = engine.bind(&g, "svc:lights:7");
    for r in [
        Request::Connect,
        Request::subscribe("c/#"),
        Request::subscribe("$share/g/c/+/+/lights/+/+"),
        Request::publish("c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r/success"),
    ] {
        println!("{}", engine.explain(&s, r));
    }
}

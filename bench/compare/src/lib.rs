//! Side-by-side comparison of topicguard with Cedar, Rego (regorus) and a linear scan.
//!
//! [`workload`] writes one MQTT authorization workload in each engine's language;
//! [`native`], [`cedar`] and [`rego`] put each engine behind the same request shape,
//! including the per-request work that engine needs (Cedar entities and context, the Rego
//! input document). `benches/compare.rs` times them in one criterion run. The tests below
//! check that every engine gives every request its expected verdict, so the benchmark
//! never times a wrong answer. This crate is its own workspace so that the main
//! package's `cargo test` never builds Cedar or regorus.

pub mod cedar;
pub mod native;
pub mod rego;
pub mod workload;

/// The linear-scan baseline, shared with the main package's benches.
#[path = "../../../benches/common/scan.rs"]
pub mod scan;

#[cfg(test)]
mod tests {
    use super::workload::{CLIENT, Workload};
    use super::*;

    fn all_agree(workload: &Workload) {
        let tg = native::Topicguard::new(&workload.topicguard).expect("topicguard policy");
        let scan = native::LinearScan::new(&workload.topicguard).expect("topicguard policy");
        let cedar = cedar::Cedar::new(&workload.cedar).expect("cedar policy");
        let mut rego = rego::Rego::new(&workload.rego).expect("rego policy");
        let (tg_s, scan_s) = (tg.bind(CLIENT), scan.bind(CLIENT));
        let (cedar_s, rego_s) = (cedar.bind(CLIENT).expect("principal"), rego.bind(CLIENT));
        for case in workload.cases() {
            let who = format!("{} {}", workload.name, case.name);
            assert_eq!(tg.decide(&tg_s, &case), case.allow, "topicguard: {who}");
            assert_eq!(scan.decide(&scan_s, &case), case.allow, "scan: {who}");
            assert_eq!(
                cedar.decide(&cedar_s, &case),
                Ok(case.allow),
                "cedar: {who}"
            );
            assert_eq!(rego.decide(&rego_s, &case), Ok(case.allow), "rego: {who}");
        }
    }

    #[test]
    fn every_engine_decides_the_base_workload_as_expected() {
        all_agree(&Workload::base(20));
    }

    #[test]
    fn every_engine_decides_the_scaled_workload_as_expected() {
        let workload = Workload::rules(1_000);
        assert_eq!(workload.rules, 1_000);
        assert!(
            workload.rego.len() > 2,
            "the Rego policy is split into modules"
        );
        all_agree(&workload);
    }

    #[test]
    fn admin_namespace_is_denied_by_every_engine() {
        // "admin" is one of the services, so an allow rule matches too: deny must win.
        let workload = Workload::with_services(vec!["lights".into(), "admin".into()]);
        let case = workload::Case {
            name: "publish/admin",
            action: workload::Action::Publish,
            target: format!("c/xfi/P1_A1/admin/{CLIENT}/r1"),
            allow: false,
        };
        let tg = native::Topicguard::new(&workload.topicguard).expect("topicguard policy");
        let cedar = cedar::Cedar::new(&workload.cedar).expect("cedar policy");
        let mut rego = rego::Rego::new(&workload.rego).expect("rego policy");
        assert!(!tg.decide(&tg.bind(CLIENT), &case));
        assert_eq!(
            cedar.decide(&cedar.bind(CLIENT).expect("principal"), &case),
            Ok(false)
        );
        assert_eq!(rego.decide(&rego.bind(CLIENT), &case), Ok(false));
    }
}

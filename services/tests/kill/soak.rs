//! The randomised soak: decisions one after another while roles are SIGKILLed at random moments and
//! started again, then a check that everything converged. `KILL_SOAK_SEED` repeats a run,
//! `KILL_SOAK_KILLS` sets the number of kills (4 by default, for CI; 50 for a long run).

use std::time::{Duration, Instant};

use crate::harness::{Rig, Role, RoleProcess};

/// splitmix64: enough randomness for picking moments and roles, repeatable from the seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn setting(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_randomised_soak_of_kills_converges_without_duplicates() {
    let seed = setting("KILL_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let kills = setting("KILL_SOAK_KILLS").unwrap_or(4);
    let wanted_decisions = (kills / 2).max(2);
    // Bounded: a few seconds per kill, and the convergence wait after.
    let budget = Duration::from_secs(30 + 6 * kills);
    let mut random = Random(seed);
    let mut rig = Rig::new(|spec| {
        spec["policy"]["cooldown_seconds"] = 0.into();
    })
    .await;
    let mut running: Vec<RoleProcess> = Role::ALL
        .into_iter()
        .map(|r| rig.spawn(r, None).0)
        .collect();
    let started = Instant::now();
    let mut killed = std::collections::BTreeMap::<&str, u64>::new();
    let mut made = 0;
    let mut done_kills = 0;
    while (done_kills < kills || made < wanted_decisions) && started.elapsed() < budget {
        if made < wanted_decisions && !rig.in_flight().await && rig.decide().await.is_some() {
            made += 1;
        }
        if done_kills < kills {
            // A random moment: up to 3 s from now, when a decision is somewhere in its steps.
            tokio::time::sleep(Duration::from_millis(100 + random.below(2900))).await;
            let victim = usize::try_from(random.below(running.len() as u64)).unwrap_or(0);
            let role = running[victim].role;
            running.swap_remove(victim).kill();
            *killed.entry(role.name()).or_default() += 1;
            done_kills += 1;
            running.push(rig.spawn(role, None).0);
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let verdict = rig.converge(Duration::from_secs(120)).await;
    eprintln!(
        "kill soak: seed {seed}, {done_kills} kills {killed:?} in {:.0} s; {} decisions {:?}; \
         {} commits, {} duplicates, {} stuck, untrue: {:?}",
        started.elapsed().as_secs_f64(),
        verdict.decisions,
        verdict.by_status,
        verdict.commits,
        verdict.duplicates,
        verdict.stuck,
        verdict.untrue
    );
    assert_eq!(done_kills, kills, "every kill was made within {budget:?}");
    verdict.assert_sound(format_args!("seed {seed}"));
    assert!(
        verdict.by_status.get("applied").copied().unwrap_or(0) >= 1,
        "seed {seed}: at least one decision went through: {verdict:?}"
    );
}

//! `cargo xtask slurm-cluster`: `kgrade grade --emit-slurm` on a real
//! one-node Slurm cluster. munged, slurmctld and slurmd are started on this
//! machine from a private configuration (own socket, ports, state
//! directories: nothing under /etc is changed), a small class is graded in
//! two array tasks through the generated submit.sh, and the merged
//! gradebook, summary and HTML index must equal an unsharded run's, byte
//! for byte. The daemons are stopped at the end, by their pid files.
//!
//! The tasks use this machine's kgrade cache (`KGRADE_CACHE` passes through
//! sbatch), so their kernel builds take the machine-wide build lock.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// slurm.conf for one node, this machine, as `slurmd -C` describes it.
pub fn slurm_conf(work: &Path, node_line: &str, host: &str) -> String {
    let w = work.display();
    format!(
        "# kgrade's one-node test cluster (cargo xtask slurm-cluster)\n\
         ClusterName=kgrade-test\n\
         SlurmctldHost={host}\n\
         SlurmctldPort=6917\n\
         SlurmdPort=6918\n\
         AuthType=auth/munge\n\
         CredType=cred/munge\n\
         AuthInfo=socket={w}/munge.sock\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         StateSaveLocation={w}/state\n\
         SlurmdSpoolDir={w}/spool\n\
         SlurmctldPidFile={w}/slurmctld.pid\n\
         SlurmdPidFile={w}/slurmd.pid\n\
         SlurmctldLogFile={w}/slurmctld.log\n\
         SlurmdLogFile={w}/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         AccountingStorageType=accounting_storage/none\n\
         SchedulerType=sched/backfill\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         ReturnToService=2\n\
         MpiDefault=none\n\
         {node_line} State=UNKNOWN\n\
         PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
    )
}

/// The node line of `slurmd -C` (without its uptime line).
fn node_line(slurmd_c: &str) -> Result<String> {
    slurmd_c
        .lines()
        .find(|l| l.starts_with("NodeName="))
        .map(str::to_string)
        .context("`slurmd -C` printed no NodeName line")
}

struct Daemons {
    pidfiles: Vec<PathBuf>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for p in &self.pidfiles {
            if let Some(pid) = std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // Only the daemons this task started, by their own pid files.
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

fn start(work: &Path, conf: &Path) -> Result<Daemons> {
    let mut d = Daemons {
        pidfiles: Vec::new(),
    };
    let key = work.join("munge.key");
    std::fs::write(&key, rand_key()?)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400))?;
    let munge_pid = work.join("munged.pid");
    run(Command::new("munged")
        .arg("--force")
        .arg(format!("--key-file={}", key.display()))
        .arg(format!("--socket={}", work.join("munge.sock").display()))
        .arg(format!("--pid-file={}", munge_pid.display()))
        .arg(format!("--log-file={}", work.join("munged.log").display()))
        .arg(format!(
            "--seed-file={}",
            work.join("munged.seed").display()
        )))?;
    d.pidfiles.push(munge_pid);
    for dir in ["state", "spool"] {
        std::fs::create_dir_all(work.join(dir))?;
    }
    run(Command::new("slurmctld").arg("-f").arg(conf).arg("-c"))?;
    d.pidfiles.push(work.join("slurmctld.pid"));
    run(Command::new("slurmd").arg("-f").arg(conf))?;
    d.pidfiles.push(work.join("slurmd.pid"));
    // Wait for the node to come up.
    let t = Instant::now();
    loop {
        let state = run(Command::new("sinfo")
            .env("SLURM_CONF", conf)
            .args(["-h", "-o", "%T"]))
        .unwrap_or_default();
        if state.trim() == "idle" {
            break;
        }
        ensure!(
            t.elapsed() < Duration::from_secs(60),
            "the node is `{}` after 60 s; see {}/slurmd.log",
            state.trim(),
            work.display()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(d)
}

fn rand_key() -> Result<Vec<u8>> {
    let mut key = vec![0u8; 128];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

/// A class of three: the reference, the reference with a mutant, and one
/// that does not build.
fn make_class(root: &Path, class: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(class);
    let reference = root.join("kernel-patches/tracker/6.1");
    let extra = [
        ("good", None),
        (
            "mutant",
            Some(reference.join("mutants/close-not-counted.patch")),
        ),
        (
            "typo",
            Some(root.join("harness/tests/fixtures/does-not-build.patch")),
        ),
    ];
    for (name, fourth) in extra {
        let dir = class.join(name);
        std::fs::create_dir_all(&dir)?;
        for f in std::fs::read_dir(&reference)? {
            let p = f?.path();
            if p.extension().is_some_and(|e| e == "patch") {
                std::fs::copy(&p, dir.join(p.file_name().unwrap_or_default()))?;
            }
        }
        if let Some(p) = fourth {
            std::fs::copy(&p, dir.join("0004-more.patch"))?;
        }
    }
    Ok(())
}

pub fn run_all(root: &Path, work: &Path) -> Result<()> {
    for tool in ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"] {
        ensure!(
            kgrade::process::have(tool),
            "`{tool}` is missing: apt-get install slurm-wlm munge"
        );
    }
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let work = &std::path::absolute(work)?;
    let host = run(Command::new("hostname").arg("-s"))?.trim().to_string();
    let node = node_line(&run(Command::new("slurmd").arg("-C"))?)?;
    let conf = work.join("slurm.conf");
    std::fs::write(&conf, slurm_conf(work, &node, &host))?;
    let _daemons = start(work, &conf)?;
    println!(
        "slurm-cluster: one node up ({:.0} s)",
        started.elapsed().as_secs_f64()
    );

    let kgrade = root.join("target/release/kgrade");
    run(Command::new("cargo").current_dir(root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "kgrade",
    ]))?;
    // The project as committed, cloned: an edit to the checkout while the
    // jobs run would change the runs' keys between shards.
    let project = work.join("project");
    run(Command::new("git")
        .args(["clone", "--quiet"])
        .arg(root)
        .arg(&project))?;
    let head = run(Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"]))?;
    run(Command::new("git").arg("-C").arg(&project).args([
        "checkout",
        "--quiet",
        "--detach",
        head.trim(),
    ]))?;
    let root = project.as_path();
    let class = work.join("class");
    make_class(root, &class)?;
    let target = "tracker/6.1/x86_64";
    let sharded = work.join("sharded");
    run(Command::new(&kgrade)
        .env("KGRADE_ROOT", root)
        .arg("grade")
        .arg(&class)
        .args([
            "--assignment",
            "tracker",
            "--targets",
            target,
            "--jobs",
            "1",
        ])
        .arg("--out")
        .arg(&sharded)
        .args(["--emit-slurm", "2"]))?;
    let t = Instant::now();
    let submitted = run(Command::new("sh")
        .arg(sharded.join("slurm/submit.sh"))
        .env("SLURM_CONF", &conf)
        .env("KGRADE_CACHE", kgrade::paths::cache_root()))?;
    let ids: Vec<String> = submitted
        .lines()
        .filter_map(|l| l.split(';').next())
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    println!("slurm-cluster: submitted {ids:?}");
    ensure!(!ids.is_empty(), "submit.sh printed no job ids: {submitted}");
    loop {
        let queued = run(Command::new("squeue")
            .env("SLURM_CONF", &conf)
            .args(["-h", "-o", "%i %T"]))?;
        if queued.trim().is_empty() {
            break;
        }
        if t.elapsed() > Duration::from_secs(3 * 3600) {
            bail!("jobs still queued after 3 hours:\n{queued}");
        }
        std::thread::sleep(Duration::from_secs(10));
    }
    let sharded_secs = t.elapsed().as_secs_f64();
    println!("slurm-cluster: array and merge done in {sharded_secs:.0} s");
    let logs = sharded.join("slurm/logs");
    for e in std::fs::read_dir(&logs)? {
        let p = e?.path();
        println!(
            "--- {}\n{}",
            p.display(),
            std::fs::read_to_string(&p).unwrap_or_default()
        );
    }

    let whole = work.join("whole");
    let t = Instant::now();
    let st = Command::new(&kgrade)
        .env("KGRADE_ROOT", root)
        .arg("grade")
        .arg(&class)
        .args([
            "--assignment",
            "tracker",
            "--targets",
            target,
            "--jobs",
            "1",
        ])
        .arg("--out")
        .arg(&whole)
        .status()?;
    ensure!(st.success(), "the unsharded run failed ({st})");
    println!(
        "slurm-cluster: unsharded run in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    for f in ["gradebook.csv", "summary.md", "report/index.html"] {
        let a =
            std::fs::read(sharded.join(f)).with_context(|| format!("the merge wrote no {f}"))?;
        let b = std::fs::read(whole.join(f))?;
        ensure!(
            a == b,
            "{f} differs between the Slurm run and the unsharded run"
        );
    }
    let gradebook = std::fs::read_to_string(whole.join("gradebook.csv"))?;
    ensure!(
        gradebook.lines().count() == 4,
        "three students expected:\n{gradebook}"
    );
    println!(
        "slurm-cluster: passed: the merged gradebook, summary and report equal the unsharded run's ({:.0} s in all)\n{gradebook}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_described_by_slurmd() {
        let c = "NodeName=vm CPUs=2 Boards=1 RealMemory=24105\nUpTime=0-00:23:55\n";
        let line = node_line(c).unwrap();
        assert_eq!(line, "NodeName=vm CPUs=2 Boards=1 RealMemory=24105");
        let conf = slurm_conf(Path::new("/w"), &line, "vm");
        assert!(conf.contains("SlurmctldHost=vm\n"));
        assert!(conf.contains("\nNodeName=vm CPUs=2 Boards=1 RealMemory=24105 State=UNKNOWN\n"));
        assert!(conf.contains("AuthInfo=socket=/w/munge.sock\n"));
        assert!(node_line("UpTime=1\n").is_err());
    }
}

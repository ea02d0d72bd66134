//! The probe job on a real Flink 2.3: its source reports the true backlog as `pendingRecords`,
//! and across a stop-with-savepoint and a resubmission at another parallelism the sink receives
//! every record the schedule produced, none twice.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use test_support::flink_cluster::{FlinkCluster, FlinkOptions};
use test_support::flink_probe::{self, ProbeJob};
use test_support::wait::{self, until_some};

/// Records per second while the job runs; a stopped job's backlog grows at this rate too.
const RATE: u64 = 200;
/// While the job is stopped, a burst makes a backlog far larger than what Flink's network buffers
/// hold (tens of thousands of these small records), so the restored source must report it.
const BURST_RATE: u64 = 50_000;
const BACKLOG: u64 = 100_000;

#[tokio::test(flavor = "multi_thread")]
async fn probe_job_reports_its_backlog_and_loses_nothing_across_a_savepoint_and_rescale()
-> anyhow::Result<()> {
    let jar = flink_probe::jar()?;
    let dir = tempfile::tempdir()?;
    let mut job = ProbeJob::new("probe-savepoint", dir.path())?;
    // At most 5000 records/s per subtask whatever the machine: the backlog takes seconds to drain.
    job.sleep_us = 200;
    let cluster = FlinkCluster::start(FlinkOptions::default()).await?;
    let http = reqwest::Client::new();
    let rest = cluster.rest_url();
    let jar_id = cluster.upload_jar(&jar).await?;

    // 1. At parallelism 2, records flow and pendingRecords is what the schedule says.
    job.set_rate(RATE)?;
    let first = cluster.submit(&jar_id, &job.program(), 2).await?;
    cluster
        .wait_running(&first, 2, Duration::from_secs(120))
        .await?;
    wait::until(
        "the sink to hold 400 records",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || job.sink_coverage().ok().filter(|c| c.distinct() >= 400),
    )
    .await;
    let sample = source_sample(&http, &cluster, &first, &job, 0)
        .await?
        .context("no pendingRecords from the running job's source")?;
    eprintln!("parallelism 2: {sample:?}");
    let via_rest = rest_pending(&http, &rest, &first, &job).await?;
    eprintln!("parallelism 2, pendingRecords via the REST API (sum over subtasks): {via_rest}");
    let restarts_before = restarts(&http, &rest, &first).await?;

    // 2. Stop with a savepoint: the sink holds exactly the records before it, in every split.
    let savepoint = stop_with_savepoint(&http, &rest, &first).await?;
    let at_stop = job.sink_coverage()?;
    for (i, split) in at_stop.per_split.iter().enumerate() {
        ensure!(
            split.missing == 0,
            "split {i} has gaps at the savepoint: {split:?}"
        );
    }
    ensure!(
        at_stop.duplicates() == 0 || restarts_before > 0,
        "{} duplicates before the savepoint, with no restart",
        at_stop.duplicates()
    );
    let read_before = at_stop.distinct();

    // 3. The backlog grows while the job is stopped.
    job.set_rate(BURST_RATE)?;
    wait::until(
        "the backlog to grow",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || (job.produced(SystemTime::now()).total >= read_before + BACKLOG).then_some(()),
    )
    .await;
    job.set_rate(RATE)?;

    // 4. Resubmitted from the savepoint at parallelism 1, the source reports that backlog.
    let second = run_from_savepoint(&http, &rest, &jar_id, &job, 1, &savepoint).await?;
    cluster
        .wait_running(&second, 1, Duration::from_secs(120))
        .await?;
    let (http_ref, cluster_ref, job_ref, second_ref) = (&http, &cluster, &job, &second);
    let backlog_seen = until_some(
        "the restored source to report the backlog",
        Duration::from_secs(30),
        || async move {
            let sample =
                source_sample(http_ref, cluster_ref, second_ref, job_ref, read_before).await?;
            eprintln!("parallelism 1: {sample:?}");
            Ok(sample.filter(|s| s.pending >= 5_000).map(|s| s.pending))
        },
    )
    .await?;
    eprintln!("the restored source reported a backlog of {backlog_seen} records");

    // 5. Once the rate is 0, the sink covers every record produced, none twice, none extra.
    let stop = job.set_rate(0)?;
    let produced = job.produced(stop);
    let started = Instant::now();
    let produced_ref = &produced;
    let coverage = until_some(
        "the sink to cover every record produced",
        Duration::from_secs(120),
        || async move {
            let coverage = job_ref.sink_coverage()?;
            Ok(coverage.covers(produced_ref).is_ok().then_some(coverage))
        },
    )
    .await
    .map_err(|e| match job.sink_coverage() {
        Ok(c) => e.context(c.covers(&produced).err().unwrap_or_default()),
        Err(read) => e.context(read),
    })?;
    eprintln!(
        "drained {} records in {:.1?} after the rate fell to 0: {} lines, {} distinct, {} duplicates",
        produced.total,
        started.elapsed(),
        coverage.lines,
        coverage.distinct(),
        coverage.duplicates()
    );
    assert_eq!(
        job.produced(SystemTime::now() + Duration::from_secs(60)),
        produced,
        "nothing is produced after the rate fell to 0"
    );
    assert_eq!(
        coverage.extra(&produced),
        0,
        "the sink holds records the schedule never produced: the job's maths and ours disagree"
    );
    let restarts_after = restarts(&http, &rest, &second).await?;
    assert!(
        coverage.duplicates() == 0 || restarts_before + restarts_after > 0,
        "{} duplicates although no job restarted: a stop-with-savepoint must cut cleanly",
        coverage.duplicates()
    );
    Ok(())
}

/// The source operator's metrics from the TaskManagers' Prometheus reporters, read live.
#[derive(Debug)]
struct SourceSample {
    pending: u64,
    /// Records the source has emitted since this job started.
    read: u64,
    /// Records produced before the sample, minus those read before the job started.
    expected_unread: u64,
}

/// Reads `pendingRecords` and `numRecordsOut` of the job's source and checks the first against
/// the schedule: pending = produced − read before this job − read by this job. `None` while the
/// reporters show no source subtask of the job yet.
async fn source_sample(
    http: &reqwest::Client,
    cluster: &FlinkCluster,
    job_id: &str,
    job: &ProbeJob,
    read_before: u64,
) -> anyhow::Result<Option<SourceSample>> {
    let operator = format!("Source:_{}", job.source_name);
    let before = SystemTime::now();
    let (mut pending, mut read, mut series) = (0.0, 0.0, 0);
    for target in cluster.metrics_targets() {
        let text = http
            .get(format!("http://{target}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let (n, sum) = sum_metric(
            &text,
            "flink_taskmanager_job_task_operator_pendingRecords",
            job_id,
            &operator,
        );
        pending += sum;
        series += n;
        read += sum_metric(
            &text,
            "flink_taskmanager_job_task_operator_numRecordsOut",
            job_id,
            &operator,
        )
        .1;
    }
    if series == 0 {
        return Ok(None);
    }
    let after = SystemTime::now();
    let produced = job.produced(before + after.duration_since(before).unwrap_or_default() / 2);
    let sample = SourceSample {
        pending: pending as u64,
        read: read as u64,
        expected_unread: produced.total.saturating_sub(read_before),
    };
    // What the source has not read yet, as the schedule has it, give or take the records that
    // arrive while the reporters answer.
    let truth = sample.expected_unread.saturating_sub(sample.read);
    let rate = job.schedule()?.segments.last().map_or(0, |s| s.rate);
    let slack = 20 + truth / 100 + rate * after.duration_since(before)?.as_millis() as u64 / 1000;
    ensure!(
        sample.pending.abs_diff(truth) <= slack,
        "pendingRecords {} but the schedule says {truth} unread (± {slack}): {sample:?}",
        sample.pending
    );
    Ok(Some(sample))
}

/// How many samples of `name` one job and operator has in Prometheus' text format, and their sum.
/// Label values are as the reporter rewrites them (characters outside `[A-Za-z0-9:_]` become `_`).
fn sum_metric(text: &str, name: &str, job_id: &str, operator: &str) -> (usize, f64) {
    let job_label = format!("job_id=\"{job_id}\"");
    let operator_label = format!("operator_name=\"{operator}\"");
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| line.contains(&job_label) && line.contains(&operator_label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .fold((0, 0.0), |(n, sum), value| (n + 1, sum + value))
}

/// `pendingRecords` through the REST API, summed over the source's subtasks. The metric's id there
/// is scoped by the operator (`Source__orders.pendingRecords`), and the JobManager fetches metrics
/// from the TaskManagers at most every 10 s, so the first answers may be empty.
async fn rest_pending(
    http: &reqwest::Client,
    rest: &str,
    job_id: &str,
    job: &ProbeJob,
) -> anyhow::Result<f64> {
    let details: Value = get(http, &format!("{rest}/jobs/{job_id}")).await?;
    let source = format!("Source: {}", job.source_name);
    let vertex = details["vertices"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == source.as_str()))
        .and_then(|v| v["id"].as_str())
        .with_context(|| format!("no vertex `{source}` in {details}"))?
        .to_owned();
    let metric = format!("Source__{}.pendingRecords", job.source_name);
    let url = format!("{rest}/jobs/{job_id}/vertices/{vertex}/subtasks/metrics?get={metric}");
    let (url, metric) = (&url, &metric);
    until_some(
        "pendingRecords in the REST API",
        Duration::from_secs(30),
        || async move {
            let answer: Value = get(http, url).await?;
            Ok(answer
                .as_array()
                .and_then(|ms| ms.iter().find(|m| m["id"] == metric.as_str()))
                .and_then(|m| m["sum"].as_f64()))
        },
    )
    .await
}

/// The job's restarts, from the JobManager's job metrics.
async fn restarts(http: &reqwest::Client, rest: &str, job_id: &str) -> anyhow::Result<u64> {
    let url = format!("{rest}/jobs/{job_id}/metrics?get=numRestarts");
    let url = &url;
    until_some(
        "numRestarts in the REST API",
        Duration::from_secs(30),
        || async move {
            let answer: Value = get(http, url).await?;
            Ok(answer[0]["value"].as_str().and_then(|v| v.parse().ok()))
        },
    )
    .await
}

/// Stops the job with a savepoint and waits until it has finished; returns the savepoint's path.
async fn stop_with_savepoint(
    http: &reqwest::Client,
    rest: &str,
    job_id: &str,
) -> anyhow::Result<String> {
    let body = json!({"drain": false, "formatType": "CANONICAL"});
    let answer: Value = send(http.post(format!("{rest}/jobs/{job_id}/stop")).json(&body)).await?;
    let trigger = answer["request-id"]
        .as_str()
        .with_context(|| format!("no request-id in {answer}"))?
        .to_owned();
    let url = &format!("{rest}/jobs/{job_id}/savepoints/{trigger}");
    let location = until_some("the savepoint", Duration::from_secs(60), || async move {
        let status: Value = get(http, url).await?;
        if let Some(cause) = status["operation"].get("failure-cause") {
            bail!("the savepoint failed: {cause}");
        }
        Ok(status["operation"]["location"].as_str().map(str::to_owned))
    })
    .await?;
    let url = &format!("{rest}/jobs/{job_id}/status");
    until_some(
        "the stopped job to finish",
        Duration::from_secs(60),
        || async move {
            let status: Value = get(http, url).await?;
            Ok((status["status"] == "FINISHED").then_some(()))
        },
    )
    .await?;
    Ok(location)
}

async fn run_from_savepoint(
    http: &reqwest::Client,
    rest: &str,
    jar_id: &str,
    job: &ProbeJob,
    parallelism: u32,
    savepoint: &str,
) -> anyhow::Result<String> {
    let body = json!({
        "parallelism": parallelism,
        "savepointPath": savepoint,
        "programArgsList": job.args(),
    });
    let answer: Value = send(http.post(format!("{rest}/jars/{jar_id}/run")).json(&body)).await?;
    Ok(answer["jobid"]
        .as_str()
        .with_context(|| format!("no jobid in {answer}"))?
        .to_owned())
}

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    send(http.get(url)).await
}

async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(status.is_success(), "HTTP {status}: {body}");
    serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))
}

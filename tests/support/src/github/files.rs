//! `GET /repos/{owner}/{repo}/pulls/{number}/files`: the files a pull request changes, read from the
//! bare repository as the diff between the merge base of base and head and the head (what GitHub
//! shows), in GitHub's `diff-entry` shape, paginated like every list.

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::branches::refresh_open_pulls;
use super::errors::{DOCS_PULL_FILES, not_found};
use super::list::paginated;
use super::pulls::parse_number;
use crate::git;

/// GitHub lists at most this many files of a pull request.
const MAX_FILES: usize = 3000;

/// One changed file, as `git diff --raw` and `--numstat` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileChange {
    pub(crate) filename: String,
    pub(crate) previous_filename: Option<String>,
    /// GitHub's word: added, removed, modified, renamed, copied or changed.
    pub(crate) status: &'static str,
    /// The blob on the side that has the file: head's, or base's for a removed file.
    pub(crate) sha: String,
    pub(crate) additions: u64,
    pub(crate) deletions: u64,
    pub(crate) patch: Option<String>,
}

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    refresh_open_pulls(&shared, &owner, &repo).await;
    let found = {
        let state = shared.lock();
        state.repo(&owner, &repo).and_then(|r| {
            let pull = parse_number(&number).and_then(|n| r.pulls.get(&n))?;
            Some((
                r.bare.clone(),
                r.full_name(),
                pull.branches.base_sha.clone(),
                pull.branches.head_sha.clone(),
            ))
        })
    };
    let Some((bare, full_name, base_sha, head_sha)) = found else {
        return not_found(DOCS_PULL_FILES).into_response();
    };
    let diff = {
        let (base_sha, head_sha) = (base_sha.clone(), head_sha.clone());
        tokio::task::spawn_blocking(move || changed_files(&bare, &base_sha, &head_sha)).await
    };
    let Ok(Ok(mut files)) = diff else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "git diff failed").into_response();
    };
    files.truncate(MAX_FILES);
    let html = format!("{}/{full_name}", shared.base_url);
    let api = format!("{}/repos/{full_name}", shared.base_url);
    let list_url = format!("{api}/pulls/{number}/files");
    paginated(&query, raw_query.as_deref(), &list_url, &files, |f| {
        render(&html, &api, &head_sha, f)
    })
}

fn render(html: &str, api: &str, head_sha: &str, file: &FileChange) -> Value {
    let mut entry = json!({
        "sha": file.sha,
        "filename": file.filename,
        "status": file.status,
        "additions": file.additions,
        "deletions": file.deletions,
        "changes": file.additions + file.deletions,
        "blob_url": format!("{html}/blob/{head_sha}/{}", file.filename),
        "raw_url": format!("{html}/raw/{head_sha}/{}", file.filename),
        "contents_url": format!("{api}/contents/{}?ref={head_sha}", file.filename),
    });
    if let Some(map) = entry.as_object_mut() {
        if let Some(patch) = &file.patch {
            map.insert("patch".into(), json!(patch));
        }
        if let Some(previous) = &file.previous_filename {
            map.insert("previous_filename".into(), json!(previous));
        }
    }
    entry
}

/// The files changed from the merge base of `base_sha` and `head_sha` to `head_sha`, in path order.
pub(crate) fn changed_files(
    bare: &FsPath,
    base_sha: &str,
    head_sha: &str,
) -> anyhow::Result<Vec<FileChange>> {
    let merge_base = git::run(bare, &["merge-base", base_sha, head_sha])?;
    let raw = git::run(
        bare,
        &[
            "diff",
            "--raw",
            "-z",
            "-M",
            "--no-abbrev",
            &merge_base,
            head_sha,
        ],
    )?;
    let numstat = git::run(
        bare,
        &["diff", "--numstat", "-z", "-M", &merge_base, head_sha],
    )?;
    let counts = parse_numstat(&numstat);
    let mut files = parse_raw(&raw);
    for file in &mut files {
        if let Some(&(added, deleted)) = counts.get(&file.filename) {
            file.additions = added;
            file.deletions = deleted;
        }
        let mut paths = vec![file.filename.as_str()];
        if let Some(previous) = &file.previous_filename {
            paths.push(previous);
        }
        file.patch = patch(bare, &merge_base, head_sha, &paths);
    }
    Ok(files)
}

/// `:old_mode new_mode old_sha new_sha STATUS\0path\0[new_path\0]` records.
fn parse_raw(raw: &str) -> Vec<FileChange> {
    let mut fields = raw.split('\0').filter(|f| !f.is_empty());
    let mut files = Vec::new();
    while let Some(meta) = fields.next() {
        let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let [_, _, old_sha, new_sha, status] = parts[..] else {
            break;
        };
        let Some(path) = fields.next() else { break };
        let letter = status.chars().next().unwrap_or('M');
        let (filename, previous_filename) = if matches!(letter, 'R' | 'C') {
            let Some(new_path) = fields.next() else { break };
            (new_path.to_owned(), Some(path.to_owned()))
        } else {
            (path.to_owned(), None)
        };
        let (status, sha) = match letter {
            'A' => ("added", new_sha),
            'D' => ("removed", old_sha),
            'R' => ("renamed", new_sha),
            'C' => ("copied", new_sha),
            'T' => ("changed", new_sha),
            _ => ("modified", new_sha),
        };
        files.push(FileChange {
            filename,
            previous_filename,
            status,
            sha: sha.to_owned(),
            additions: 0,
            deletions: 0,
            patch: None,
        });
    }
    files
}

/// `added\tdeleted\tpath\0`, or `added\tdeleted\t\0old\0new\0` for a rename; binary files count 0.
fn parse_numstat(numstat: &str) -> HashMap<String, (u64, u64)> {
    let mut fields = numstat.split('\0');
    let mut counts = HashMap::new();
    while let Some(record) = fields.next() {
        let mut parts = record.splitn(3, '\t');
        let (Some(added), Some(deleted), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = if path.is_empty() {
            let _old = fields.next();
            fields.next().unwrap_or_default()
        } else {
            path
        };
        counts.insert(
            path.to_owned(),
            (added.parse().unwrap_or(0), deleted.parse().unwrap_or(0)),
        );
    }
    counts
}

/// The file's hunks without the `diff --git` header, as GitHub's `patch`; `None` for a binary file or
/// a pure rename.
fn patch(bare: &FsPath, from: &str, to: &str, paths: &[&str]) -> Option<String> {
    let mut args = vec!["diff", "--no-color", "-M", from, to, "--"];
    args.extend_from_slice(paths);
    let diff = git::run(bare, &args).ok()?;
    let start = diff.find("\n@@")?;
    Some(diff[start + 1..].to_owned())
}

//! GitHub's JSON for users, repositories, labels and pull requests, with the fields real responses
//! carry (octocrab's models need many of them). API URLs point at this server; `html_url`s use the
//! same host, as on GitHub Enterprise Server.

use serde_json::{Map, Value, json};

use super::model::{CommentRecord, LabelRecord, PullRecord, RepoRecord};

/// Base URL and acting user, needed to render any object.
pub(crate) struct Ctx<'a> {
    pub(crate) base: &'a str,
    pub(crate) bot_login: &'a str,
}

/// A stable made-up numeric id for a name (FNV-1a), so the same owner always gets the same id.
pub(crate) fn stable_id(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.to_ascii_lowercase().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % 100_000_000 + 1
}

fn node_id(prefix: &str, id: u64) -> String {
    format!("{prefix}_kgDO{id:08X}")
}

pub(crate) fn user(ctx: &Ctx<'_>, login: &str) -> Value {
    let id = stable_id(login);
    let api = format!("{}/users/{login}", ctx.base);
    json!({
        "login": login,
        "id": id,
        "node_id": node_id("U", id),
        "avatar_url": format!("{}/avatars/u/{id}?v=4", ctx.base),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{}/{login}", ctx.base),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User",
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// The repository's `*_url` fields: (field, path after the repository's API URL).
const REPO_URL_TEMPLATES: &[(&str, &str)] = &[
    ("forks_url", "/forks"),
    ("keys_url", "/keys{/key_id}"),
    ("collaborators_url", "/collaborators{/collaborator}"),
    ("teams_url", "/teams"),
    ("hooks_url", "/hooks"),
    ("issue_events_url", "/issues/events{/number}"),
    ("events_url", "/events"),
    ("assignees_url", "/assignees{/user}"),
    ("branches_url", "/branches{/branch}"),
    ("tags_url", "/tags"),
    ("blobs_url", "/git/blobs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"),
    ("git_refs_url", "/git/refs{/sha}"),
    ("trees_url", "/git/trees{/sha}"),
    ("statuses_url", "/statuses/{sha}"),
    ("languages_url", "/languages"),
    ("stargazers_url", "/stargazers"),
    ("contributors_url", "/contributors"),
    ("subscribers_url", "/subscribers"),
    ("subscription_url", "/subscription"),
    ("commits_url", "/commits{/sha}"),
    ("git_commits_url", "/git/commits{/sha}"),
    ("comments_url", "/comments{/number}"),
    ("issue_comment_url", "/issues/comments{/number}"),
    ("contents_url", "/contents/{+path}"),
    ("compare_url", "/compare/{base}...{head}"),
    ("merges_url", "/merges"),
    ("archive_url", "/{archive_format}{/ref}"),
    ("downloads_url", "/downloads"),
    ("issues_url", "/issues{/number}"),
    ("pulls_url", "/pulls{/number}"),
    ("milestones_url", "/milestones{/number}"),
    (
        "notifications_url",
        "/notifications{?since,all,participating}",
    ),
    ("labels_url", "/labels{/name}"),
    ("releases_url", "/releases{/id}"),
    ("deployments_url", "/deployments"),
];

pub(crate) fn repository(ctx: &Ctx<'_>, repo: &RepoRecord) -> Value {
    let full = repo.full_name();
    let api = format!("{}/repos/{full}", ctx.base);
    let html = format!("{}/{full}", ctx.base);
    let host = ctx.base.trim_start_matches("http://");
    let open_issues = repo.pulls.values().filter(|p| p.open).count();
    let mut map = Map::new();
    let identity = json!({
        "id": repo.id,
        "node_id": node_id("R", repo.id),
        "name": repo.name,
        "full_name": full,
        "private": true,
        "owner": user(ctx, &repo.owner),
        "html_url": html,
        "description": null,
        "fork": false,
        "url": api,
    });
    let details = json!({
        "created_at": repo.created_at,
        "updated_at": repo.created_at,
        "pushed_at": repo.created_at,
        "git_url": format!("git://{host}/{full}.git"),
        "ssh_url": format!("git@{host}:{full}.git"),
        // The one clone URL that works: the bare repository itself.
        "clone_url": format!("file://{}", repo.bare.display()),
        "svn_url": html,
        "homepage": null,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": null,
        "has_issues": true,
        "has_projects": false,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 0,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": open_issues,
        "license": null,
        "allow_forking": false,
        "is_template": false,
        "web_commit_signoff_required": false,
        "topics": [],
        "visibility": "private",
        "forks": 0,
        "open_issues": open_issues,
        "watchers": 0,
        "default_branch": repo.default_branch,
    });
    extend(&mut map, identity);
    for (field, path) in REPO_URL_TEMPLATES {
        map.insert((*field).to_owned(), json!(format!("{api}{path}")));
    }
    extend(&mut map, details);
    Value::Object(map)
}

fn extend(map: &mut Map<String, Value>, fields: Value) {
    if let Value::Object(fields) = fields {
        map.extend(fields);
    }
}

pub(crate) fn label(ctx: &Ctx<'_>, repo: &RepoRecord, label: &LabelRecord) -> Value {
    json!({
        "id": label.id,
        "node_id": node_id("LA", label.id),
        "url": format!("{}/repos/{}/labels/{}", ctx.base, repo.full_name(), label.name),
        "name": label.name,
        "color": label.color,
        "default": false,
        "description": null,
    })
}

pub(crate) fn labels_of(ctx: &Ctx<'_>, repo: &RepoRecord, pull: &PullRecord) -> Vec<Value> {
    pull.labels
        .iter()
        .filter_map(|name| repo.labels.get(&name.to_lowercase()))
        .map(|l| label(ctx, repo, l))
        .collect()
}

/// How much of the pull request object to render: the list endpoint returns GitHub's
/// "pull-request-simple" (no merge state, no counts); single-PR endpoints and webhooks the full one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    Simple,
    Full,
}

pub(crate) fn pull_request(
    ctx: &Ctx<'_>,
    repo: &RepoRecord,
    pull: &PullRecord,
    detail: Detail,
) -> Value {
    let full = repo.full_name();
    let api = format!("{}/repos/{full}", ctx.base);
    let html = format!("{}/{full}/pull/{}", ctx.base, pull.number);
    let issue = format!("{api}/issues/{}", pull.number);
    let self_url = format!("{api}/pulls/{}", pull.number);
    let statuses = format!("{api}/statuses/{}", pull.branches.head_sha);
    let repo_json = repository(ctx, repo);
    let owner = user(ctx, &repo.owner);
    let branch = |name: &str, sha: &str| {
        json!({
            "label": format!("{}:{name}", repo.owner),
            "ref": name,
            "sha": sha,
            "user": owner,
            "repo": repo_json,
        })
    };
    let links = json!({
        "self": {"href": self_url},
        "html": {"href": html},
        "issue": {"href": issue},
        "comments": {"href": format!("{issue}/comments")},
        "review_comments": {"href": format!("{self_url}/comments")},
        "review_comment": {"href": format!("{api}/pulls/comments{{/number}}")},
        "commits": {"href": format!("{self_url}/commits")},
        "statuses": {"href": statuses},
    });
    let mut pr = Map::new();
    let fields = json!({
        "url": self_url,
        "id": pull.id,
        "node_id": node_id("PR", pull.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue,
        "number": pull.number,
        "state": if pull.open { "open" } else { "closed" },
        "locked": false,
        "title": pull.title,
        "user": user(ctx, &pull.author),
        "body": pull.body,
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "closed_at": pull.closed_at,
        "merged_at": pull.merged_at,
        "merge_commit_sha": pull.merge_commit_sha,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": labels_of(ctx, repo, pull),
        "milestone": null,
        "draft": pull.draft,
        "commits_url": format!("{self_url}/commits"),
        "review_comments_url": format!("{self_url}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue}/comments"),
        "statuses_url": statuses,
        "author_association": "CONTRIBUTOR",
        "auto_merge": null,
        "active_lock_reason": null,
    });
    extend(&mut pr, fields);
    pr.insert(
        "head".into(),
        branch(&pull.head_ref, &pull.branches.head_sha),
    );
    pr.insert(
        "base".into(),
        branch(&pull.base_ref, &pull.branches.base_sha),
    );
    pr.insert("_links".into(), links);
    if detail == Detail::Full {
        let (mergeable, mergeable_state) = if pull.open {
            (json!(true), "clean")
        } else {
            (Value::Null, "unknown")
        };
        let merged_by = if pull.merged {
            user(ctx, ctx.bot_login)
        } else {
            Value::Null
        };
        let stats = pull.branches.stats;
        let extra = json!({
            "merged": pull.merged,
            "mergeable": mergeable,
            "rebaseable": mergeable,
            "mergeable_state": mergeable_state,
            "merged_by": merged_by,
            "comments": repo.comments.get(&pull.number).map_or(0, Vec::len),
            "review_comments": 0,
            "maintainer_can_modify": pull.maintainer_can_modify,
            "commits": stats.commits,
            "additions": stats.additions,
            "deletions": stats.deletions,
            "changed_files": stats.changed_files,
        });
        extend(&mut pr, extra);
    }
    Value::Object(pr)
}

/// An issue comment as GitHub returns it (`issue-comment`), with its Markdown as `body`.
pub(crate) fn comment(
    ctx: &Ctx<'_>,
    repo: &RepoRecord,
    number: u64,
    comment: &CommentRecord,
) -> Value {
    let full = repo.full_name();
    json!({
        "id": comment.id,
        "node_id": node_id("IC", comment.id),
        "url": format!("{}/repos/{full}/issues/comments/{}", ctx.base, comment.id),
        "html_url": format!("{}/{full}/pull/{number}#issuecomment-{}", ctx.base, comment.id),
        "issue_url": format!("{}/repos/{full}/issues/{number}", ctx.base),
        "body": comment.body,
        "user": user(ctx, &comment.author),
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
        "author_association": if comment.author == repo.owner { "OWNER" } else { "CONTRIBUTOR" },
        "performed_via_github_app": null,
        "reactions": {
            "url": format!("{}/repos/{full}/issues/comments/{}/reactions", ctx.base, comment.id),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
        },
    })
}

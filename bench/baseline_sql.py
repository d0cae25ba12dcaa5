"""The baseline's SQL: the cheapest statements that return what docgate returns, with the
same visibility predicate as docgate.policy."""

PAGE_SIZE = 50
USER_SQL = """
SELECT u.id, u.username, u.email, u.is_active, u.create_time, u.update_time,
       coalesce(array_agg(r.name ORDER BY r.name) FILTER (WHERE r.name IS NOT NULL), '{}')
         AS roles
FROM users u
LEFT JOIN user_roles ur ON ur.user_id = u.id
LEFT JOIN roles r ON r.id = ur.role_id
WHERE u.id = $1
GROUP BY u.id
"""

# The visibility predicate per role set, as docgate.policy writes it ({me} = the caller).
VISIBILITY = {
    "admin": "NOT is_deleted",
    "paid_user": "NOT is_deleted AND (owner_id = {me} OR is_public)",
    "free_user": "NOT is_deleted AND (owner_id = {me} OR (is_public AND NOT requires_paid_access))",
}
_COLUMNS = (
    "id, title, content, owner_id, is_public, requires_paid_access, "
    "create_time, update_time, delete_time, version"
)
# GetDocument: $1 = document id, $2 = caller (not for admins).
GET_SQL = {
    role: f"SELECT {_COLUMNS} FROM documents WHERE id = $1 AND " + pred.format(me="$2")
    for role, pred in VISIBILITY.items()
}
# ListDocuments, first page in the default order: $1 = caller (not for admins).
LIST_SQL = {
    role: f"SELECT {_COLUMNS} FROM documents WHERE "
    + pred.format(me="$1")
    + f" ORDER BY create_time DESC, id DESC LIMIT {PAGE_SIZE + 1}"
    for role, pred in VISIBILITY.items()
}

ROLES_SQL = """
SELECT ur.user_id, array_agg(r.name) AS roles
FROM user_roles ur JOIN roles r ON r.id = ur.role_id GROUP BY ur.user_id
"""

# Projects, as docgate.policy writes the rule: admins see all, the owner their own, everyone
# else ACTIVE and COMPLETED ({me} = the caller).
PROJECT_VISIBILITY = {
    "admin": "true",
    "paid_user": "(p.owner_id = {me} OR p.state IN ('active', 'completed'))",
    "free_user": "(p.owner_id = {me} OR p.state IN ('active', 'completed'))",
}
_PROJECT_COLUMNS = (
    "p.id, p.name, p.description, p.state, p.owner_id, p.create_time, p.update_time, p.version"
)
# feedback_count (every item) and average_score (scored items only: avg skips NULL), per project
# from the (project_id, create_time, id) index.
_PROJECT_STATS = (
    "CROSS JOIN LATERAL (SELECT count(*) AS feedback_count, avg(f.score) AS average_score"
    " FROM feedback f WHERE f.project_id = p.id) s"
)
# GetProject: $1 = project id, $2 = caller (not for admins).
GET_PROJECT_SQL = {
    role: f"SELECT {_PROJECT_COLUMNS}, s.* FROM projects p {_PROJECT_STATS}"
    " WHERE p.id = $1 AND " + pred.format(me="$2")
    for role, pred in PROJECT_VISIBILITY.items()
}
# ListProjects, first page in the default order: the page first, then the aggregates for its
# rows only. $1 = caller (not for admins).
LIST_PROJECTS_SQL = {
    role: f"SELECT p.*, s.* FROM (SELECT {_PROJECT_COLUMNS} FROM projects p WHERE "
    + pred.format(me="$1")
    + f" ORDER BY p.create_time DESC, p.id DESC LIMIT {PAGE_SIZE + 1}) p {_PROJECT_STATS}"
    " ORDER BY p.create_time DESC, p.id DESC"
    for role, pred in PROJECT_VISIBILITY.items()
}

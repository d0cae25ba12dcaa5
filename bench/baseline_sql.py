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

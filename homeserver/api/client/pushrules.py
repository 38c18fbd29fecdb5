"""Spec file: client-server/pushrules.yaml.

Besides the spec's paths, `/pushrules/{path}` takes every other path under /pushrules/ (the
router prefers the spec's routes), and answers as Synapse does: the kind's rules for
`/pushrules/global/{kind}/`, and 400 M_UNRECOGNIZED for a path that names no scope, kind,
rule or attribute (`/pushrules/global`, `/pushrules/global/room`, an unknown scope...).
`GET /pushrules` without the trailing slash is a 404, as in Synapse.
"""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of
from homeserver.errors import Codes, MatrixError


@route("GET", "/pushrules/", auth=Auth.USER)
async def get_push_rules(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/"""
    return json_response(await services_of(request).push_rules.rules_for(requester_of(request).user_id))


@route("GET", "/pushrules/global/", auth=Auth.USER)
async def get_push_rules_global(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/"""
    return json_response(await services_of(request).push_rules.global_rules(requester_of(request).user_id))


@route("GET", "/pushrules/global/{kind}/{ruleId}", auth=Auth.USER)
async def get_push_rule(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}"""
    m = request.match_info
    return json_response(await services_of(request).push_rules.rule(requester_of(request).user_id, m["kind"], m["ruleId"]))


@route("PUT", "/pushrules/global/{kind}/{ruleId}", auth=Auth.USER, rate_limited=True)
async def set_push_rule(request: web.Request, kind: str | None = None, rule_id: str | None = None) -> web.Response:
    """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).push_rules.put_rule(
        requester_of(request).user_id, kind or m["kind"], rule_id or m["ruleId"], body,
        before=request.query.get("before"), after=request.query.get("after"),
    )
    return json_response({})


@route("DELETE", "/pushrules/global/{kind}/{ruleId}", auth=Auth.USER)
async def delete_push_rule(request: web.Request, kind: str | None = None, rule_id: str | None = None) -> web.Response:
    """DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}"""
    m = request.match_info
    await services_of(request).push_rules.delete_rule(
        requester_of(request).user_id, kind or m["kind"], rule_id or m["ruleId"])
    return json_response({})


@route("GET", "/pushrules/global/{kind}/{ruleId}/enabled", auth=Auth.USER)
async def is_push_rule_enabled(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled"""
    m = request.match_info
    enabled = await services_of(request).push_rules.enabled(requester_of(request).user_id, m["kind"], m["ruleId"])
    return json_response({"enabled": enabled})


@route("PUT", "/pushrules/global/{kind}/{ruleId}/enabled", auth=Auth.USER)
async def set_push_rule_enabled(request: web.Request, kind: str | None = None, rule_id: str | None = None) -> web.Response:
    """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).push_rules.set_enabled(
        requester_of(request).user_id, kind or m["kind"], rule_id or m["ruleId"], body)
    return json_response({})


@route("GET", "/pushrules/global/{kind}/{ruleId}/actions", auth=Auth.USER)
async def get_push_rule_actions(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions"""
    m = request.match_info
    actions = await services_of(request).push_rules.actions(requester_of(request).user_id, m["kind"], m["ruleId"])
    return json_response({"actions": actions})


@route("PUT", "/pushrules/global/{kind}/{ruleId}/actions", auth=Auth.USER)
async def set_push_rule_actions(request: web.Request, kind: str | None = None, rule_id: str | None = None) -> web.Response:
    """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).push_rules.set_actions(
        requester_of(request).user_id, kind or m["kind"], rule_id or m["ruleId"], body)
    return json_response({})


def _unrecognized(message: str = "Unrecognized request") -> MatrixError:
    return MatrixError(400, Codes.UNRECOGNIZED, message)


_TRAILING_SLASH = "Unrecognised request: You probably wanted a trailing slash"
_ATTRIBUTES = ("enabled", "actions")


def _rule_path(path: str) -> tuple[str, str, str | None]:
    """`global/{kind}/{ruleId}[/{attr}]` -> (kind, rule_id, attr), or 400."""
    parts = path.split("/")
    if parts[0] != "global" or len(parts) < 3 or not parts[1] or not parts[2]:
        raise _unrecognized()
    attr = parts[3] if len(parts) > 3 and parts[3] else None
    if attr is not None and attr not in _ATTRIBUTES:
        raise _unrecognized()
    return parts[1], parts[2], attr


@route("GET", "/pushrules/{path}", auth=Auth.USER, variant_of="/pushrules/global/{kind}/{ruleId}",
       patterns={"path": ".*"})
async def get_push_rules_path(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/{path}"""
    rules = services_of(request).push_rules
    user_id = requester_of(request).user_id
    parts = request.match_info["path"].split("/")
    if parts[0] == "":
        return json_response(await rules.rules_for(user_id))
    if parts[0] != "global":
        raise _unrecognized()
    parts = parts[1:]
    if not parts:
        raise _unrecognized(_TRAILING_SLASH)
    ruleset = await rules.global_rules(user_id)
    if parts[0] == "":
        return json_response(ruleset)
    kind = parts[0]
    if kind not in ruleset:
        raise _unrecognized()
    if len(parts) == 1:
        raise _unrecognized(_TRAILING_SLASH)
    if parts[1] == "":
        return json_response(ruleset[kind])
    rule = await rules.rule(user_id, kind, parts[1])
    if len(parts) == 2:
        return json_response(rule)
    attr = parts[2]
    if attr not in rule:
        raise _unrecognized()
    return json_response({attr: rule[attr]})


@route("PUT", "/pushrules/{path}", auth=Auth.USER, variant_of="/pushrules/global/{kind}/{ruleId}",
       patterns={"path": ".*"})
async def set_push_rules_path(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/pushrules/{path}"""
    kind, rule_id, attr = _rule_path(request.match_info["path"])
    if attr == "enabled":
        return await set_push_rule_enabled(request, kind, rule_id)
    if attr == "actions":
        return await set_push_rule_actions(request, kind, rule_id)
    return await set_push_rule(request, kind, rule_id)


@route("DELETE", "/pushrules/{path}", auth=Auth.USER, variant_of="/pushrules/global/{kind}/{ruleId}",
       patterns={"path": ".*"})
async def delete_push_rules_path(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/pushrules/{path}"""
    kind, rule_id, attr = _rule_path(request.match_info["path"])
    if attr is not None:
        raise _unrecognized()
    return await delete_push_rule(request, kind, rule_id)

"""Spec file: client-server/pushrules.yaml."""

from aiohttp import web

from homeserver.api.http import Auth, json_response, read_json_object, requester_of, route, services_of


@route("GET", "/pushrules/", auth=Auth.USER)
async def get_push_rules(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/"""
    return json_response(await services_of(request).push_rules.rules_for(requester_of(request).user_id))


@route("GET", "/pushrules", auth=Auth.USER, variant_of="/pushrules/")
async def get_push_rules_without_slash(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules"""
    return await get_push_rules(request)


@route("GET", "/pushrules/global/", auth=Auth.USER)
async def get_push_rules_global(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/"""
    return json_response(await services_of(request).push_rules.global_rules(requester_of(request).user_id))


@route("GET", "/pushrules/global", auth=Auth.USER, variant_of="/pushrules/global/")
async def get_push_rules_global_without_slash(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global"""
    return await get_push_rules_global(request)


@route("GET", "/pushrules/global/{kind}/{ruleId}", auth=Auth.USER)
async def get_push_rule(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}"""
    m = request.match_info
    return json_response(await services_of(request).push_rules.rule(requester_of(request).user_id, m["kind"], m["ruleId"]))


@route("PUT", "/pushrules/global/{kind}/{ruleId}", auth=Auth.USER, rate_limited=True)
async def set_push_rule(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).push_rules.put_rule(
        requester_of(request).user_id, m["kind"], m["ruleId"], body,
        before=request.query.get("before"), after=request.query.get("after"),
    )
    return json_response({})


@route("DELETE", "/pushrules/global/{kind}/{ruleId}", auth=Auth.USER)
async def delete_push_rule(request: web.Request) -> web.Response:
    """DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}"""
    m = request.match_info
    await services_of(request).push_rules.delete_rule(requester_of(request).user_id, m["kind"], m["ruleId"])
    return json_response({})


@route("GET", "/pushrules/global/{kind}/{ruleId}/enabled", auth=Auth.USER)
async def is_push_rule_enabled(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled"""
    m = request.match_info
    enabled = await services_of(request).push_rules.enabled(requester_of(request).user_id, m["kind"], m["ruleId"])
    return json_response({"enabled": enabled})


@route("PUT", "/pushrules/global/{kind}/{ruleId}/enabled", auth=Auth.USER)
async def set_push_rule_enabled(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).push_rules.set_enabled(requester_of(request).user_id, m["kind"], m["ruleId"], body)
    return json_response({})


@route("GET", "/pushrules/global/{kind}/{ruleId}/actions", auth=Auth.USER)
async def get_push_rule_actions(request: web.Request) -> web.Response:
    """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions"""
    m = request.match_info
    actions = await services_of(request).push_rules.actions(requester_of(request).user_id, m["kind"], m["ruleId"])
    return json_response({"actions": actions})


@route("PUT", "/pushrules/global/{kind}/{ruleId}/actions", auth=Auth.USER)
async def set_push_rule_actions(request: web.Request) -> web.Response:
    """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions"""
    m = request.match_info
    body = await read_json_object(request)
    await services_of(request).push_rules.set_actions(requester_of(request).user_id, m["kind"], m["ruleId"], body)
    return json_response({})

"""The phone-tap page (``GET /t?p=…&m=…``): what a phone shows when it reads a member card's SUN URL.

Public: without a staff login it shows only "genuine card, active member" and the masked name.
Not in the OpenAPI schema (a page, not the JSON API; ``GET /v1/verify/sun`` is its JSON twin).
A request carrying a staff bearer token (a service-point or partner terminal's browser) sees the
fields that role may see. Every tap is a verification: the counter moves, an audit row is written,
and a replayed URL (a copied link) is refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, select_autoescape
from sqlmodel import Session

from cardsvc.api.auth import page_client
from cardsvc.api.problems import status_for
from cardsvc.api.verify_schemas import verification_of
from cardsvc.errors import CardsvcError, RateLimited
from cardsvc.verification.outcome import Verdict, Verification
from cardsvc.verification.service import ANONYMOUS
from cardsvc.verification.views import anonymous_view, member_view

router = APIRouter(tags=["pages"])

TAP_PATH = "/t"

_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>会员卡验证</title>
<style>body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f5f5f5}
main{max-width:28rem;margin:2rem auto;background:#fff;border-radius:12px;padding:1.5rem;text-align:center}
.ok{color:#127a2e}.nok{color:#b3261e}.check{color:#a15c00}h1{font-size:1.5rem}dl{text-align:left}
dt{color:#666;font-size:.9rem}dd{margin:0 0 .6rem 0;font-size:1.1rem}</style></head>
<body><main>
<h1 class="{{ css }}">{{ headline }}</h1>
<p>{{ detail }}</p>
{% if fields %}<dl>{% for label, value in fields %}
<dt>{{ label }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>{% endif %}
<p><small>工会会员卡 · 碰卡验证</small></p>
</main></body></html>
"""

_LABELS = {"masked_name": "会员", "name": "姓名", "organisation": "所在工会", "membership_status": "会籍状态",
           "id_last4": "身份证号后四位", "eligibility": "疗休养资格", "quota": "剩余名额",
           "recent_services": "最近服务", "member_id": "会员编号", "card_status": "卡状态",
           "id_number": "身份证号"}
_REASONS = {"replay": "此链接已被使用，请重新碰卡。", "sun_mac": "卡片数据校验失败。",
            "member_suspended": "会籍暂停，请人工核验。", "member_inactive": "非在册会员。",
            "card_revoked": "此卡已注销。", "card_lost": "此卡已挂失。", "card_suspended": "此卡已暂停使用。",
            "unknown_card": "不是本会发行的会员卡。", "expired": "此卡已过期。",
            "not_configured": "本服务暂未开通碰卡验证，请联系工作人员。"}

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_page = _env.from_string(_TEMPLATE)


def render(status: int, css: str, headline: str, detail: str, fields: list[tuple[str, str]]) -> HTMLResponse:
    body = _page.render(css=css, headline=headline, detail=detail, fields=fields)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _fields(view: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [(_LABELS.get(k, k), _text(v)) for k, v in (view or {}).items() if v not in (None, "", [], {})]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "，".join(f"{k}：{_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "；".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _outcome_page(result: Verification, view: dict[str, Any] | None) -> HTMLResponse:
    if result.verdict is Verdict.OK:
        return render(200, "ok", "✔ 真实会员卡", "在册会员，会籍有效。", _fields(view))
    detail = _REASONS.get(result.reason or "", "验证未通过。")
    if result.verdict is Verdict.CHECK:
        return render(200, "check", "需人工核验", detail, _fields(view))
    return render(200, "nok", "✘ 验证未通过", detail, [])


@router.get(TAP_PATH, name="tap_page", response_class=HTMLResponse, include_in_schema=False)
async def tap_page(request: Request) -> HTMLResponse:
    """The page a phone opens from the card's SUN URL (Chinese UI)."""
    try:
        svc = verification_of(request)
        client = await page_client(request)  # staff: per-client limit; anonymous: per source address
        url = str(request.url)

        def work(session: Session) -> HTMLResponse:
            actor = client.client_id if client else ANONYMOUS
            result = svc.verify_sun(session, actor=actor, url=url)
            view = (member_view(session, result, client, svc.cipher, tz=svc.zone) if client
                    else anonymous_view(result))
            return _outcome_page(result, view)

        return await svc.db.run_batched(work)
    except RateLimited as exc:
        page = render(429, "nok", "请稍后再试", f"请求过于频繁，请 {exc.retry_after} 秒后再试。", [])
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    except CardsvcError as exc:
        status = status_for(exc) or 500
        reason = getattr(exc, "reason", None) or exc.code
        return render(status, "nok", "✘ 无法验证", _REASONS.get(reason, "链接无效或不完整，请重新碰卡。"), [])

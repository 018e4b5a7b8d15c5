"""The pages' message catalog: every string in zh-CN (default) and English, in ONE table.

Templates call ``t("key")`` (or ``t("key", n=3)`` for ``{n}`` placeholders). A key missing from the
table or a language missing for a key is a bug: :func:`translate` raises, and a test checks that
every key has both languages. Add keys with the page that uses them (docs/web.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Lang(StrEnum):
    zh = "zh-CN"
    en = "en"


DEFAULT_LANG = Lang.zh
LANG_COOKIE = "cardsvc_lang"


def _m(zh: str, en: str) -> Mapping[Lang, str]:
    return MappingProxyType({Lang.zh: zh, Lang.en: en})


MESSAGES: Mapping[str, Mapping[Lang, str]] = MappingProxyType({
    # frame
    "app.title": _m("工会会员卡服务", "Union membership cards"),
    "app.skip": _m("跳到正文", "Skip to content"),
    "app.nav": _m("主导航", "Main navigation"),
    "app.signed_in_as": _m("当前用户", "Signed in as"),
    "app.logout": _m("退出登录", "Sign out"),
    "app.language": _m("语言", "Language"),
    "app.switch_to": _m("English", "中文"),
    "app.home": _m("首页", "Home"),
    "app.home_intro": _m("请从上方菜单选择要办理的业务。", "Choose a task from the menu above."),
    "app.no_pages": _m("您的角色暂无可用页面。", "There are no pages for your role yet."),
    "app.cancel": _m("取消", "Cancel"),
    "app.submit": _m("提交", "Submit"),
    "app.vendor_missing": _m(
        "页面所需的脚本文件未安装（请运行 tools/build_web_assets.sh）：{name}",
        "A script this page needs is not installed (run tools/build_web_assets.sh): {name}"),
    "app.drafts_restored": _m(
        "已恢复您登录前填写的内容，请核对后重新提交。",
        "What you had typed before signing in was restored: check it and submit again."),
    # roles
    "role.admin": _m("管理员", "Administrator"),
    "role.clerk": _m("制卡员", "Issuance clerk"),
    "role.service_point": _m("服务站", "Service point"),
    "role.partner": _m("疗休养基地", "Partner base"),
    # login
    "login.title": _m("工作人员登录", "Staff sign-in"),
    "login.username": _m("用户名", "Username"),
    "login.password": _m("密码", "Password"),
    "login.submit": _m("登录", "Sign in"),
    "login.bad_credentials": _m("用户名或密码错误。", "Wrong username or password."),
    "login.locked": _m("连续登录失败次数过多，账户已锁定 15 分钟。",
                       "Too many failed sign-ins: the account is locked for 15 minutes."),
    "login.disabled": _m("此账户已停用，请联系管理员。", "This account is disabled: ask an administrator."),
    "login.expired": _m("登录已过期，请重新登录。您填写的内容不会丢失。",
                        "Your session expired: sign in again. Nothing you typed is lost."),
    "login.required": _m("请先登录。", "Please sign in first."),
    "login.signed_out": _m("您已退出登录。", "You are signed out."),
    # errors
    "error.title": _m("出错了", "Something went wrong"),
    "error.back": _m("返回首页", "Back to the home page"),
    "error.forbidden": _m("您的角色无权打开此页面。", "Your role may not open this page."),
    "error.not_found": _m("找不到此页面或记录。", "No such page or record."),
    "error.invalid": _m("输入有误：{detail}", "Invalid input: {detail}"),
    "error.conflict": _m("操作与当前状态冲突：{detail}", "This conflicts with the current state: {detail}"),
    "error.csrf": _m("表单已失效，请刷新页面后重试。",
                     "The form has expired: reload the page and try again."),
    "error.too_large": _m("上传的文件太大。", "The upload is too large."),
    "error.not_configured": _m("服务器尚未配置完成：{detail}", "The server is not fully set up: {detail}"),
    "error.rate_limited": _m("请求过于频繁，请稍后再试。", "Too many requests: try again shortly."),
    "error.internal": _m("服务器内部错误，请把编号 {error_id} 告知管理员。",
                         "Internal error: quote {error_id} to the administrator."),
    "error.generic": _m("无法完成操作：{detail}", "The request could not be completed: {detail}"),
    "error.duplicate": _m("此表单已提交过，以下是第一次提交的结果。",
                          "This form was already submitted: here is the result of the first submission."),
    # navigation
    "nav.desk_import": _m("导入会员名单", "Import members"),
    "nav.desk_batches": _m("制卡批次", "Batches"),
    "nav.desk_cards": _m("查卡与挂失", "Cards"),
})


def parse_lang(value: str | None) -> Lang:
    """The language named by a cookie or query value; anything else is the default (zh-CN)."""
    try:
        return Lang(value or DEFAULT_LANG)
    except ValueError:
        return DEFAULT_LANG


def translate(lang: Lang, key: str, **values: object) -> str:
    """The message ``key`` in ``lang`` with ``{placeholders}`` filled; unknown keys raise KeyError."""
    text = MESSAGES[key][lang]
    return text.format(**values) if values else text

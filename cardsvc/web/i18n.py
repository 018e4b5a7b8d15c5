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
    # service point (issue #6 item 4)
    "nav.sp_tap": _m("刷卡服务", "Tap screen"),
    "nav.sp_records": _m("服务记录与统计", "Records and statistics"),
    "sp.tap.title": _m("会员刷卡服务", "Member tap screen"),
    "sp.tap.point": _m("服务站：{name}", "Service point: {name}"),
    "sp.tap.waiting": _m("请会员在读卡器上刷卡，或扫描/输入会员卡二维码。",
                         "Ask the member to tap the card on the reader, or scan / type the card's QR code."),
    "sp.tap.text": _m("二维码内容或碰卡链接", "QR code text or phone-tap link"),
    "sp.tap.text_help": _m("扫码枪会自动填入；也可粘贴手机碰卡打开的链接。",
                           "A scanner types it in; a link opened by a phone tap can be pasted too."),
    "sp.tap.verify": _m("验证", "Verify"),
    "sp.tap.refused": _m("验证未通过", "Not verified"),
    "sp.member.title": _m("已验证的会员", "Verified member"),
    "sp.member.name": _m("姓名", "Name"),
    "sp.member.organisation": _m("所在工会", "Union"),
    "sp.member.card": _m("卡号", "Card number"),
    "sp.member.recent": _m("最近服务", "Recent services"),
    "sp.member.no_recent": _m("暂无服务记录。", "No services yet."),
    "sp.member.check": _m("会籍暂停：请人工核验后再办理。", "Membership suspended: check in person first."),
    "sp.member.nok": _m("此卡当前不可用，不能登记服务。",
                        "This card cannot be used now: no service can be recorded."),
    "sp.member.not_verified": _m("此卡最近未在本服务站验证，请先刷卡或扫码。",
                                 "This card was not verified at this point recently: tap or scan it first."),
    "sp.record.item": _m("服务项目", "Service item"),
    "sp.record.submit": _m("登记服务", "Record the service"),
    "sp.record.done": _m("服务已登记。", "The service is recorded."),
    "sp.records.title": _m("服务记录与统计", "Records and statistics"),
    "sp.records.today": _m("今日服务记录", "Today's records"),
    "sp.records.time": _m("时间", "Time"),
    "sp.records.none_today": _m("今天还没有服务记录。", "No services recorded today."),
    "sp.records.month": _m("{month} 月度统计", "Statistics for {month}"),
    "sp.records.pick_month": _m("月份", "Month"),
    "sp.records.show": _m("查看", "Show"),
    "sp.records.total": _m("本月共 {n} 次服务。", "{n} services this month."),
    "sp.records.chart_items": _m("{month} 各服务项目次数", "Services per item in {month}"),
    "sp.records.chart_months": _m("每月服务次数", "Services per month"),
    # partner base (issue #6 item 5)
    "nav.partner_desk": _m("入住核验", "Verify guests"),
    "nav.partner_guests": _m("今日客人", "Today's guests"),
    "partner.desk.title": _m("疗休养入住核验", "Guest verification"),
    "partner.desk.base": _m("基地：{name}", "Base: {name}"),
    "partner.desk.programme": _m("疗休养项目", "Programme"),
    "partner.desk.left": _m("剩余 {n} 个名额", "{n} places left"),
    "partner.scan.title": _m("扫描会员卡二维码", "Scan the member card's QR code"),
    "partner.scan.camera": _m("打开摄像头扫码", "Scan with the camera"),
    "partner.scan.stop": _m("关闭摄像头", "Stop the camera"),
    "partner.scan.video": _m("摄像头画面", "Camera view"),
    "partner.scan.no_camera": _m("无法使用摄像头，请手动输入二维码内容。",
                                 "The camera is not available: type the QR code text instead."),
    "partner.scan.typed": _m("手动输入二维码内容或碰卡链接",
                             "Type the QR code text or paste a phone-tap link"),
    "partner.scan.typed_help": _m("以 UC1: 开头的文字，或手机碰卡打开的链接。",
                                  "Text starting with UC1:, or the link a phone tap opened."),
    "partner.scan.verify": _m("核验", "Verify"),
    "partner.guest.title": _m("核验结果", "Result"),
    "partner.guest.ok": _m("✔ 真实有效的会员卡", "✔ Genuine, valid card"),
    "partner.guest.nok": _m("✘ 核验未通过", "✘ Not verified"),
    "partner.guest.check": _m("需人工核验", "Check in person"),
    "partner.guest.offline": _m("（离线核验：姓名与名额联网后确认）",
                                "(verified offline: name and quota are confirmed when back online)"),
    "partner.guest.refused": _m("碰卡链接无效或已被使用，请重新碰卡。",
                                "The tap link is not valid or was already used: tap the card again."),
    "partner.guest.name": _m("姓名（已脱敏）", "Name (masked)"),
    "partner.guest.id_last4": _m("身份证号后四位", "Last 4 ID digits"),
    "partner.guest.eligibility": _m("疗休养资格", "Eligibility"),
    "partner.guest.quota": _m("剩余名额", "Places left"),
    "partner.guest.eligible": _m("符合资格", "Eligible"),
    "partner.guest.not_eligible": _m("不符合资格", "Not eligible"),
    "partner.checkin.submit": _m("办理入住", "Check in"),
    "partner.checkin.done": _m("已办理入住，剩余 {n} 个名额。", "Checked in; {n} places left."),
    "partner.checkin.again": _m("此次入住已登记过（未重复登记），剩余 {n} 个名额。",
                                "This check-in was already recorded (not recorded twice); {n} places left."),
    "partner.checkin.failed": _m("未能办理入住。", "The check-in failed."),
    "partner.checkin.queued": _m("网络不可用：入住已保存在本机，联网后自动上传。",
                                 "No network: the check-in is kept here and sent when back online."),
    "partner.offline.download": _m("下载离线数据", "Download offline data"),
    "partner.offline.downloaded": _m("离线数据已下载，断网时可继续核验。",
                                     "Offline data downloaded: verifying works without a network."),
    "partner.offline.download_failed": _m("离线数据下载失败", "Downloading the offline data failed"),
    "partner.offline.no_data": _m("无网络且本机没有离线数据：请联网后先下载离线数据。",
                                  "No network and no offline data on this device: download it when online."),
    "partner.offline.banner": _m("离线 — {n} 条入住待上传", "Offline — {n} check-ins waiting to be sent"),
    "partner.offline.online": _m("在线", "Online"),
    "partner.offline.pending": _m("待上传的离线入住：", "Offline check-ins waiting:"),
    "partner.offline.rejected": _m("（{n} 条被服务器拒绝：{reasons}）",
                                   "({n} refused by the server: {reasons})"),
    "partner.guests.title": _m("今日客人", "Today's guests"),
    "partner.guests.in": _m("入住时间", "Checked in"),
    "partner.guests.out": _m("退房时间", "Checked out"),
    "partner.guests.source": _m("方式", "How"),
    "partner.guests.source_online": _m("在线", "online"),
    "partner.guests.source_offline": _m("离线补传", "offline, synced"),
    "partner.guests.action": _m("办理", "Action"),
    "partner.guests.checkout": _m("退房", "Check out"),
    "partner.guests.checkout_of": _m("为 {name} 办理退房", "Check {name} out"),
    "partner.guests.out_done": _m("已办理退房。", "Checked out."),
    "partner.guests.none": _m("今天还没有客人入住。", "No guests today."),
    # why a verification, record or check-in was refused (reason codes of the workflows)
    "why.other": _m("未通过（{reason}）", "Refused ({reason})"),
    "why.not_ok": _m("验证未通过。", "Not verified."),
    "why.malformed": _m("不是本会的会员卡二维码。", "This is not one of our member card QR codes."),
    "why.malformed_credential": _m("不是本会的会员卡二维码。",
                                   "This is not one of our member card QR codes."),
    "why.prefix": _m("不是本会的会员卡二维码。", "This is not one of our member card QR codes."),
    "why.base45": _m("二维码内容不完整或已损坏。", "The QR code text is incomplete or damaged."),
    "why.signature": _m("二维码签名无效（可能被篡改）。",
                        "The QR code's signature is not valid (tampered?)."),
    "why.unknown_card": _m("不是本会发行的会员卡。", "This card was not issued by us."),
    "why.replay": _m("此碰卡链接已被使用，请重新碰卡。",
                     "This tap link was already used: tap the card again."),
    "why.sun_mac": _m("卡片数据校验失败。", "The card's data does not check out."),
    "why.card_revoked": _m("此卡已注销。", "This card is revoked."),
    "why.card_lost": _m("此卡已挂失。", "This card is reported lost."),
    "why.card_suspended": _m("此卡已暂停使用。", "This card is suspended."),
    "why.credential_superseded": _m("这张二维码已被新卡取代。", "This QR code was replaced by a newer card."),
    "why.expired": _m("会员卡已过期。", "The card has expired."),
    "why.member_suspended": _m("会籍暂停，请人工核验。", "Membership suspended: check in person."),
    "why.member_inactive": _m("非在册会员。", "Not an active member."),
    "why.not_configured": _m("服务器未开通此项核验，请联系管理员。",
                             "The server is not set up for this check: contact the administrator."),
    "why.no_recent_verification": _m("请先刷卡或扫码验证此卡。", "Verify the card first (tap or scan)."),
    "why.unknown_item": _m("没有这个服务项目。", "There is no such service item."),
    "why.quota_exhausted": _m("名额已满，不能再办理入住。", "The programme is full: no places left."),
    "why.already_checked_in": _m("此会员已在本项目办理过入住。",
                                 "This member is already checked in to this programme."),
    "why.already_checked_out": _m("此客人已退房。", "This guest has already checked out."),
    "why.programme_not_running": _m("项目不在开放日期内。", "The programme is not running today."),
    "why.not_on_list": _m("不在本项目名单内。", "Not on this programme's list."),
    "why.category": _m("不属于本项目的参加人群。", "Not in a group this programme is for."),
    "why.idempotency_key_reused": _m("请重新扫码后再办理。", "Scan the card again, then check in."),
    "why.unknown_programme": _m("没有这个疗休养项目。", "There is no such programme."),
    "why.forbidden": _m("无权操作此项目。", "You may not act on this programme."),
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

package console

import (
	"net/http"
	"net/url"

	"github.com/fieldsync/fieldsync/schema"
)

// The console is in Chinese unless the browser chose English (the switch
// in the header keeps the choice in a cookie). The words of the forms —
// field labels, value labels, titles — come from the schema; these are the
// console's own.
var messages = map[string][2]string{ // key: {zh, en}
	"app":                  {"fieldsync 督导台", "fieldsync console"},
	"signin":               {"登录", "Sign in"},
	"signout":              {"退出", "Sign out"},
	"username":             {"用户名", "User name"},
	"password":             {"密码", "Password"},
	"nav_overview":         {"概况", "Overview"},
	"nav_conflicts":        {"冲突", "Conflicts"},
	"nav_duplicates":       {"重复农户", "Duplicates"},
	"nav_quarantine":       {"隔离", "Quarantine"},
	"nav_devices":          {"平板", "Tablets"},
	"nav_reinspections":    {"待复查", "Re-inspections"},
	"nav_exports":          {"导出", "Exports"},
	"nav_map":              {"地图", "Map"},
	"msg_judged_as_of":     {"按 %s 的标准统计，正在按新标准重新统计", "figures judged as of %s; being re-judged under the new standard"},
	"main_nav":             {"主导航", "Main navigation"},
	"lang_switch":          {"English", "中文"},
	"lang_switch_label":    {"切换为英文", "Switch to Chinese"},
	"households":           {"农户", "Households"},
	"housing_inspected":    {"已做住房鉴定", "Housing inspected"},
	"water_inspected":      {"已做饮水检查", "Water inspected"},
	"never_inspected":      {"从未检查", "Never inspected"},
	"never_inspected_list": {"从未检查的农户", "Households never inspected"},
	"never_villages":       {"有从未检查农户的村（点开村名看农户）", "Villages with households never inspected (open one to see them by name)"},
	"verdicts":             {"“两不愁三保障”核验", "Verification (two assurances, three guarantees)"},
	"as_of":                {"截至", "as of"},
	"verified":             {"已核验", "Verified"},
	"blocked":              {"未达标", "Blocked"},
	"blocked_by":           {"未达标的保障", "Blocked by"},
	"incomplete":           {"证据不全", "Incomplete"},
	"verdict":              {"结论", "Verdict"},
	"grades":               {"鉴定等级", "Appraisal grades"},
	"dangerous_by_renov":   {"危房（C、D级）改造情况", "Dangerous houses (C, D) by renovation"},
	"water_failing":        {"饮水不达标（按指标）", "Water failing, by indicator"},
	"water_unsafe":         {"饮水未显示安全", "Water not shown safe"},
	"villages_behind":      {"进度落后的村", "Villages behind"},
	"per_day":              {"近14天每日检查数", "Inspections per day, last 14 days"},
	"areas":                {"下级区域", "Areas"},
	"area":                 {"区域", "Area"},
	"coverage":             {"覆盖率", "Coverage"},
	"region":               {"辖区", "Region"},
	"all_regions":          {"全部辖区", "Every region"},
	"indicator":            {"指标", "Indicator"},
	"count":                {"数量", "Count"},
	"day":                  {"日期", "Day"},
	"housing":              {"住房", "Housing"},
	"water":                {"饮水", "Water"},
	"head_name":            {"户主", "Head of household"},
	"records":              {"记录", "Records"},
	"photos":               {"照片", "Photos"},
	"history":              {"字段历史", "History of every field"},
	"field":                {"字段", "Field"},
	"before":               {"修改前", "Before"},
	"after":                {"修改后", "After"},
	"who":                  {"操作人", "Who"},
	"tablet":               {"平板", "Tablet"},
	"when":                 {"时间", "When"},
	"decision":             {"合并决定", "Decision"},
	"version":              {"版本", "Version"},
	"stored":               {"服务器上的值", "Stored value"},
	"incoming":             {"平板提交的值", "Incoming value"},
	"kept":                 {"目前保留", "Kept now"},
	"resolve":              {"裁定", "Resolve"},
	"choose_stored":        {"采用服务器上的值", "Keep the stored value"},
	"choose_incoming":      {"采用新提交的值", "Take the incoming value"},
	"department":           {"部门", "Department"},
	"list_of":              {"名单：", "List: "},
	"followups":            {"防返贫监测", "Follow-ups"},
	"monitored":            {"监测户", "Monitored"},
	"visits_due":           {"到期待走访", "Visits due"},
	"verdicts_pending":     {"待重新核验", "awaiting a new judgement"},
	"monitoring_status":    {"监测状态", "Monitoring status"},
	"why_monitored":        {"监测原因", "Why monitored"},
	"visit_due":            {"应走访日期", "Visit due"},
	"due":                  {"已到期", "due"},
	"note":                 {"说明", "Note"},
	"override_note":        {"未核验通过时的认定说明（脱贫需填写）", "Override note (a decided value without a verified verdict)"},
	"no_open_conflicts":    {"没有待裁定的冲突。", "No open conflicts."},
	"no_duplicates":        {"没有待处理的重复农户。", "No open duplicates."},
	"no_quarantine":        {"没有未关闭的隔离记录。", "No open quarantined changes."},
	"no_devices":           {"没有平板。", "No tablets."},
	"no_reinspections":     {"没有到期的复查。", "No household is due."},
	"merge_into":           {"合并，保留", "Merge, keeping"},
	"merge":                {"合并", "Merge"},
	"dismiss":              {"不是重复", "Not a duplicate"},
	"reason":               {"原因", "Reason"},
	"close":                {"关闭", "Close"},
	"errors":               {"错误", "Errors"},
	"received":             {"收到时间", "Received"},
	"name":                 {"名称", "Name"},
	"user":                 {"用户", "User"},
	"last_push":            {"最近上传", "Last push"},
	"last_pull":            {"最近下载", "Last pull"},
	"behind":               {"未同步记录", "Records behind"},
	"revoke":               {"吊销", "Revoke"},
	"revoked":              {"已吊销", "Revoked"},
	"my_tablets":           {"我的平板", "My tablets"},
	"village":              {"村", "Village"},
	"reasons":              {"原因", "Reasons"},
	"current":              {"当前鉴定", "Current appraisal"},
	"exports_region":       {"导出本辖区数据", "Export the region's data"},
	"format":               {"格式", "Format"},
	"language":             {"语言", "Language"},
	"snapshot":             {"快照", "Snapshot"},
	"coverage_report":      {"覆盖率报表", "Coverage report"},
	"reinspection_list":    {"复查名单", "Re-inspection list"},
	"codes":                {"代码", "Codes"},
	"lang_zh":              {"中文", "Chinese"},
	"lang_en":              {"英文", "English"},
	"lang_codes":           {"代码（不译）", "Codes (untranslated)"},
	"lang_":                {"", ""},
	"all_forms":            {"全部表单", "Every form"},
	"map_colour":           {"着色", "Colour by"},
	"by_grade":             {"按鉴定等级", "By grade"},
	"by_water":             {"按饮水安全", "By water safety"},
	"without_location":     {"无位置的农户", "Households without a location"},
	"water_safe":           {"饮水安全", "Water safe"},
	"water_not_safe":       {"饮水未显示安全", "Water not shown safe"},
	"not_inspected":        {"未检查", "Not inspected"},
	"live":                 {"有新同步时自动刷新", "Refreshes when syncs arrive"},
	"go_up":                {"上一级", "Up one level"},
	"drill":                {"查看", "Open"},
	"forbidden":            {"无权访问", "Forbidden"},
	"not_found":            {"未找到", "Not found"},
	"invalid":              {"请求无效", "Invalid request"},
	"error":                {"出错了", "Something went wrong"},
	"msg_csrf":             {"表单已过期或缺少校验码，请返回并重试。", "The form's token is missing or stale: go back and try again."},
	"note_registered":      {"建档时随记录登记的状态，尚未核验", "status registered with the record, not yet verified"},
	"msg_signin_again":     {"会话已结束，请重新登录。", "Your session has ended: sign in again."},
	"msg_role":             {"此页面仅供督导员和管理员使用。", "This page is for supervisors and administrators."},
	"msg_login_incomplete": {"请输入用户名和密码。", "Enter your user name and password."},
	"msg_login_failed":     {"用户名或密码错误，或账户已停用。", "Unknown user, wrong password, or disabled account."},
	"msg_rate_limited":     {"失败次数过多，请稍后再试。", "Too many attempts: try again later."},
	"msg_disabled":         {"此账户已停用，请联系管理员。", "This account is disabled: ask an admin."},
	"msg_no_region":        {"区划代码应为2至12位数字。", "A region is a division code of 2 to 12 digits."},
	"msg_too_large":        {"提交的内容过长。", "The form sent is too large."},
	"msg_scope":            {"该区域不在您的辖区内。", "That region is outside your scope."},
	"msg_done":             {"已保存。", "Saved."},
	"msg_internal":         {"服务器内部错误，已记录。", "Internal error; it was logged."},
	"pct_of":               {"占", "of"},
	"opened":               {"打开农户", "Open household"},
	"none":                 {"无", "none"},
	"deleted":              {"已删除", "deleted"},
	"merged_into":          {"已并入", "merged into"},
	"skip":                 {"跳到正文", "Skip to content"},
	"signed_in_as":         {"当前用户", "Signed in as"},
}

// t is the console's message key in lang.
func t(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		if m, ok = registryMessages[key]; !ok {
			return key
		}
	}
	if lang == schema.LangEN {
		return m[1]
	}
	return m[0]
}

// langOf is the request's language: zh unless the cookie says en.
func langOf(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && ck.Value == schema.LangEN {
		return schema.LangEN
	}
	return schema.LangZH
}

// handleLang keeps the language choice and goes back.
func (c *Console) handleLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if lang != schema.LangEN {
		lang = schema.LangZH
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600})
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

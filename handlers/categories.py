"""/categories: district staff looking through the request categories and changing them.

Callback data: ``ct:p:<page>`` lists a page, ``ct:o:<id>`` opens a category, ``ct:s:<id>:<setting>`` asks for a
number (``d`` due working days, ``r`` reminder hours, ``e`` escalation hours), ``ct:n:<id>:<locale>`` asks for a
name (``ct:n:<id>:+`` for a language it has no name in yet), ``ct:a:<id>`` switches it on or off, ``ct:u:<id>`` /
``ct:w:<id>`` move it up or down, ``ct:new`` asks for a new one. The core checks who may change categories
whatever the buttons said.
"""

from __future__ import annotations

from collections.abc import Callable

from babel import Locale, UnknownLocaleError

from bot.core import categories
from bot.core.categories import CategoryChangeRefused, CategoryProblem, Setting
from bot.core.context import Context
from bot.core.messages import Button, Text, inline
from bot.core.router import RoleFilter, Router, button_args, callback
from bot.i18n import N_, Translator, available_locales
from storage.models import Category

router = Router(role=RoleFilter(categories.may_manage_categories,
                                N_("Only district staff can change the request categories.")))

PREFIX = "ct"
PER_PAGE = 8
STATE = "categories"
STATE_NUMBER = "categories.number"
STATE_NAME = "categories.name"
STATE_NEW = "categories.new"
SETTING_CODES = {"d": Setting.DUE_DAYS, "r": Setting.REMIND_HOURS, "e": Setting.ESCALATE_HOURS}
ANOTHER_LANGUAGE = "+"
PROBLEMS = {
    CategoryProblem.NOT_ALLOWED: N_("Only district staff can change the request categories."),
    CategoryProblem.UNKNOWN: N_("This category no longer exists."),
    CategoryProblem.OUT_OF_RANGE: N_("Please send a whole number from 1 to {limit}."),
    CategoryProblem.REMIND_NOT_BEFORE_ESCALATE: N_(
        "The reminder must come before the escalation: reminder {remind} h, escalation {escalate} h. "
        "Please send another number."
    ),
    CategoryProblem.BAD_NAME: N_("A name has 1 to {limit} characters. Please send another one."),
    CategoryProblem.BAD_LOCALE: N_(
        "Please start with the language's code, such as “ug” or “zh_TW”, then a space and the name."
    ),
    CategoryProblem.BAD_CODE: N_(
        "The code is 1 to 60 letters, digits, “_” or “-”. Send the code, a space and the Chinese name, "
        "such as: noise 噪音扰民"
    ),
    CategoryProblem.CODE_TAKEN: N_("A category with this code exists already. Please choose another code."),
    CategoryProblem.LAST_ACTIVE: N_("This is the only category residents can choose, so it stays on."),
}


def language_name(locale: str) -> str:
    try:
        return Locale.parse(locale).get_language_name(locale) or locale
    except (ValueError, UnknownLocaleError):
        return locale


def summary_line(t: Translator, category: Category) -> str:
    line = t._("{name}: {days} working days, reminder after {remind} h, escalation after {escalate} h").format(
        name=category.name(t.locale), days=t.number(category.due_days), remind=t.number(category.remind_after_hours),
        escalate=t.number(category.escalate_after_hours),
    )
    return line if category.active else t._("{line} (off)").format(line=line)


@router.command("categories")
def list_command(ctx: Context) -> None:
    ctx.clear_state()
    show_page(ctx, 0)


def show_page(ctx: Context, page: int) -> None:
    t = ctx.t
    every = categories.list_categories(ctx.session)
    page = min(max(page, 0), max(len(every) - 1, 0) // PER_PAGE)
    shown = every[page * PER_PAGE : (page + 1) * PER_PAGE]
    lines = [t._("Request categories, in the order residents see them:")]
    lines += [f"{page * PER_PAGE + number}. {summary_line(t, category)}" for number, category in enumerate(shown, 1)]
    rows = [[Button(category.name(t.locale)[:60], callback(PREFIX, "o", category.id))] for category in shown]
    navigation = []
    if page > 0:
        navigation.append(Button(t._("◀ Previous"), callback(PREFIX, "p", page - 1)))
    if len(every) > (page + 1) * PER_PAGE:
        navigation.append(Button(t._("Next ▶"), callback(PREFIX, "p", page + 1)))
    rows += [navigation, [Button(t._("➕ Add a category"), callback(PREFIX, "new"))]]
    ctx.edit("\n".join(lines), inline(*rows))


def show_category(ctx: Context, category: Category, headline: str = "") -> None:
    t = ctx.t
    names = {locale: category.names.get(locale, "") for locale in (*available_locales(), *category.names)}
    lines = [headline] if headline else []
    lines.append(t._("Category {code}").format(code=category.code))
    lines += [t._("Name in {language}: {name}").format(language=language_name(locale), name=name or "—")
              for locale, name in names.items()]
    lines += [
        t._("Due: {days} working days").format(days=t.number(category.due_days)),
        t._("Reminder after {hours} office hours without acceptance").format(
            hours=t.number(category.remind_after_hours)),
        t._("Up a level after {hours} office hours without acceptance").format(
            hours=t.number(category.escalate_after_hours)),
        t._("Residents can choose it.") if category.active else t._("Residents cannot choose it."),
    ]
    cid = category.id
    name_buttons = [Button(t._("Name in {language}").format(language=language_name(locale)),
                           callback(PREFIX, "n", cid, locale)) for locale in names]
    keyboard = inline(
        *([button] for button in name_buttons),
        [Button(t._("Name in another language"), callback(PREFIX, "n", cid, ANOTHER_LANGUAGE))],
        [Button(t._("Due days"), callback(PREFIX, "s", cid, "d")),
         Button(t._("Reminder hours"), callback(PREFIX, "s", cid, "r")),
         Button(t._("Escalation hours"), callback(PREFIX, "s", cid, "e"))],
        [Button(t._("Turn off") if category.active else t._("Turn on"), callback(PREFIX, "a", cid)),
         Button(t._("▲ Up"), callback(PREFIX, "u", cid)), Button(t._("▼ Down"), callback(PREFIX, "w", cid))],
        [Button(t._("◀ All categories"), callback(PREFIX, "p", 0))],
    )
    ctx.edit("\n".join(lines), keyboard)


def refusal(ctx: Context, problem: CategoryProblem, category: Category | None = None) -> str:
    text = ctx.t._(PROBLEMS[problem])
    limits = {"limit": ctx.t.number(categories.MAX_NAME) if problem is CategoryProblem.BAD_NAME else ""}
    if category is not None:
        limits.update(remind=ctx.t.number(category.remind_after_hours),
                      escalate=ctx.t.number(category.escalate_after_hours))
    return text.format(**{"remind": "", "escalate": "", **limits})


@router.button(PREFIX)
def category_button(ctx: Context) -> None:
    t = ctx.t
    args = button_args(ctx)
    action = args[0] if args else ""
    if action == "new":
        ask_for_new(ctx)
        return
    if len(args) < 2 or not args[1].isdigit() or action not in BUTTON_ACTIONS:
        ctx.answer(t._("This button is no longer valid."), alert=True)
        return
    if action == "p":
        ctx.answer()
        ctx.clear_state()
        show_page(ctx, int(args[1]))
        return
    category = ctx.session.get(Category, int(args[1]))
    if category is None:
        ctx.answer(refusal(ctx, CategoryProblem.UNKNOWN), alert=True)
        return
    BUTTON_ACTIONS[action](ctx, category, args[2:])


def open_category(ctx: Context, category: Category, _args: list[str]) -> None:
    ctx.answer()
    ctx.clear_state()
    show_category(ctx, category)


def ask_for_number(ctx: Context, category: Category, args: list[str]) -> None:
    t = ctx.t
    setting = SETTING_CODES.get(args[0]) if args else None
    if setting is None:
        ctx.answer(t._("This button is no longer valid."), alert=True)
        return
    questions = {
        Setting.DUE_DAYS: t._("In how many working days should a request of “{name}” be resolved? Now: {value}."),
        Setting.REMIND_HOURS: t._(
            "After how many office hours without acceptance are the holders of a “{name}” request reminded? "
            "Now: {value}."),
        Setting.ESCALATE_HOURS: t._(
            "After how many office hours without acceptance does a “{name}” request go up a level? Now: {value}."),
    }
    ctx.answer()
    ctx.set_state(STATE_NUMBER, category_id=category.id, setting=setting.value)
    ctx.reply(questions[setting].format(name=category.name(t.locale), value=t.number(getattr(category, setting.value)))
              + "\n" + t._("Send the number, or /cancel."))


def ask_for_name(ctx: Context, category: Category, args: list[str]) -> None:
    t = ctx.t
    locale = args[0] if args else ""
    if locale != ANOTHER_LANGUAGE and not categories.LOCALE_PATTERN.fullmatch(locale):
        ctx.answer(t._("This button is no longer valid."), alert=True)
        return
    ctx.answer()
    if locale == ANOTHER_LANGUAGE:
        ctx.set_state(STATE_NAME, category_id=category.id, locale="")
        ctx.reply(t._("Send the language's code, a space and the name of “{name}” in it, such as: ug {name}")
                  .format(name=category.name(t.locale)) + "\n" + t._("Or send /cancel."))
        return
    ctx.set_state(STATE_NAME, category_id=category.id, locale=locale)
    ctx.reply(t._("Send the name of “{name}” in {language}, or /cancel.").format(
        name=category.name(t.locale), language=language_name(locale)))


def switch(ctx: Context, category: Category, _args: list[str]) -> None:
    try:
        categories.toggle_active(ctx.session, ctx.person, category.id, ctx.now)
    except CategoryChangeRefused as refused:
        ctx.answer(refusal(ctx, refused.problem), alert=True)
        return
    ctx.answer()
    show_category(ctx, category)


def move(ctx: Context, category: Category, step: int) -> None:
    try:
        categories.move(ctx.session, ctx.person, category.id, step, ctx.now)
    except CategoryChangeRefused as refused:
        ctx.answer(refusal(ctx, refused.problem), alert=True)
        return
    ctx.answer()
    position = categories.list_categories(ctx.session).index(category) + 1
    show_category(ctx, category, ctx.t._("Now number {position} in the list.").format(
        position=ctx.t.number(position)))


def move_up(ctx: Context, category: Category, _args: list[str]) -> None:
    move(ctx, category, -1)


def move_down(ctx: Context, category: Category, _args: list[str]) -> None:
    move(ctx, category, +1)


CategoryButton = Callable[[Context, Category, list[str]], None]
BUTTON_ACTIONS: dict[str, CategoryButton] = {
    "p": open_category,  # handled before the category is looked up
    "o": open_category,
    "s": ask_for_number,
    "n": ask_for_name,
    "a": switch,
    "u": move_up,
    "w": move_down,
}


def ask_for_new(ctx: Context) -> None:
    t = ctx.t
    ctx.answer()
    ctx.set_state(STATE_NEW)
    ctx.reply(t._("Send the new category's code, a space and its Chinese name, such as: noise 噪音扰民") + "\n"
              + t._("It starts with 7 working days and 24 / 48 office hours; change them after. Or send /cancel."))


@router.step(STATE)
def category_text(ctx: Context) -> None:
    t = ctx.t
    if not isinstance(ctx.event, Text):
        ctx.reply(t._("Please send it as text, or /cancel."))
        return
    text = ctx.event.text.strip()
    if ctx.person.state == STATE_NEW:
        add(ctx, text)
        return
    category = ctx.session.get(Category, int(ctx.state_data.get("category_id", 0)))
    if category is None or ctx.person.state not in (STATE_NUMBER, STATE_NAME):
        ctx.clear_state()
        ctx.reply(refusal(ctx, CategoryProblem.UNKNOWN))
        return
    if ctx.person.state == STATE_NUMBER:
        change_number(ctx, category, text)
    else:
        change_name(ctx, category, text)


def change_number(ctx: Context, category: Category, text: str) -> None:
    t = ctx.t
    setting = Setting(ctx.state_data.get("setting", Setting.DUE_DAYS.value))
    limit = categories.SETTING_LIMITS[setting]
    digits = text.translate(FULL_WIDTH_DIGITS)
    if not digits.isdigit() or len(digits) > 6:
        ctx.reply(t._(PROBLEMS[CategoryProblem.OUT_OF_RANGE]).format(limit=t.number(limit)))
        return
    try:
        categories.set_number(ctx.session, ctx.person, category.id, setting, int(digits), ctx.now)
    except CategoryChangeRefused as refused:
        text = refusal(ctx, refused.problem, category)
        if refused.problem is CategoryProblem.OUT_OF_RANGE:
            text = t._(PROBLEMS[refused.problem]).format(limit=t.number(limit))
        ctx.reply(text)
        return
    ctx.clear_state()
    show_category(ctx, category, t._("✔ Saved."))


def change_name(ctx: Context, category: Category, text: str) -> None:
    t = ctx.t
    locale = str(ctx.state_data.get("locale", ""))
    if not locale:
        locale, _, text = text.partition(" ")
    try:
        categories.set_name(ctx.session, ctx.person, category.id, locale, text, ctx.now)
    except CategoryChangeRefused as refused:
        ctx.reply(refusal(ctx, refused.problem, category))
        return
    ctx.clear_state()
    show_category(ctx, category, t._("✔ Saved."))


def add(ctx: Context, text: str) -> None:
    code, _, name = text.partition(" ")
    try:
        category = categories.add_category(ctx.session, ctx.person, code, name, ctx.now)
    except CategoryChangeRefused as refused:
        ctx.reply(refusal(ctx, refused.problem))
        return
    ctx.clear_state()
    show_category(ctx, category, ctx.t._("✔ Added. Residents can choose it now."))


FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

"""The tokenizer test corpus: hand-picked hard cases plus seeded random strings (>= 1,000 in all)."""

import random

HAND_PICKED = [
    "a photo of a dog.",
    "A PHOTO OF A CAT!",
    "",
    "   ",
    "it's, they're, we've, I'm, you'll, he'd, don't",
    "IT'S THEY'RE WE'VE I'M YOU'LL HE'D DON'T",
    "hello,world!!! ... ?!?! ---",
    "1234567890 3.14159 1,000,000 2nd 21st 10% $5.99 #1 @home",
    "e-mail user@example.com https://example.com/path?q=1&r=2#frag",
    "café naïve résumé Ångström façade jalapeño coöperate",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ １２３",
    "ﬁne ﬂour ﬀ ligatures",
    "curly ‘quotes’ and “double quotes” — dashes – ok",
    "&amp; &lt;tag&gt; &quot;quoted&quot; &#39;apos&#39; &nbsp; &eacute;",
    "tabs\tand\nnewlines\r\nand   many    spaces",
    "non-breaking\u00a0space, thin\u2009space, ideographic\u3000space",
    "zero\u200bwidth joiner\u200d and bom\ufeff and nel\u0085 here",
    "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ ✨",
    "中文字符测试 日本語のテキスト 한국어 텍스트",
    "Русский текст Ελληνικά العربية עברית हिन्दी ไทย",
    "Straße STRASSE İstanbul ΣΊΣΥΦΟΣ",
    "under_score camelCaseWord kebab-case-word PascalCase",
    "n_o_t_e: x^2 + y^2 = z^2; a<b>c {json: [1, 2]}",
    "combining e\u0301 vs precomposed é, a\u030a vs å",
    "math ∑∫√∞≈≠ arrows ←→↑↓ symbols ©®™ currency €£¥₹",
    "<|startoftext|>",
    "a photo of a " + "very " * 100 + "long dog.",
    " ".join(f"word{i}" for i in range(120)),
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
]

CLASS_NAMES = [
    "tench", "goldfish", "great white shark", "tiger_shark", "hammerhead", "electric-ray", "stingray",
    "cock", "hen", "ostrich", "brambling", "goldfinch", "house finch", "junco", "indigo bunting",
    "American robin", "bulbul", "jay", "magpie", "chickadee", "water ouzel", "kite", "bald eagle",
    "vulture", "great grey owl", "European fire salamander", "common newt", "eft", "spotted salamander",
    "axolotl", "bullfrog", "tree frog", "loggerhead", "leatherback turtle", "mud turtle", "terrapin",
    "banded gecko", "common iguana", "American chameleon", "whiptail", "agama", "frilled lizard",
    "Egyptian Mau", "pickup truck", "red_circle", "greenSquare", "blue-triangle", "forest path",
    "AnnualCrop", "HerbaceousVegetation", "PermanentCrop", "SeaLake", "crème brûlée", "piña colada",
]

TEMPLATES = [
    "a photo of a {}.", "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.",
    "a rendering of a {}.", "graffiti of a {}.", "a cropped photo of the {}.", "a tattoo of a {}.",
    "the embroidered {}.", "a bright photo of a {}.", "a photo of a clean {}.", "a dark photo of the {}.",
    "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
    "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
    "a pixelated photo of the {}.", "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.",
    "itap of a {}.", "a low resolution photo of the {}.", "a {} in a video game.", "a origami {}.",
]

POOL = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "      \t\n.,;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~`"
    "éèêëàâäôöûüçñßøåæœÉÀÖÜ’‘“”—–…€£¥©®™°±×÷"
    "中文日本語한국어русскийελληνικάعربيהעבריתहिन्दीไทย"
    "😀👍🏽🇫🇷❤️✨🐶🐱\u200d\u00a0\u3000ﬁ１２Ａｂ"
)


def corpus(n_random: int = 1000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = list(HAND_PICKED)
    out += [t.format(c) for t, c in zip(TEMPLATES * 10, rng.sample(CLASS_NAMES * 6, len(CLASS_NAMES) * 6))][:200]
    for _ in range(n_random):
        length = rng.choice([1, 3, 8, 20, 40, 90, 200])
        out.append("".join(rng.choice(POOL) for _ in range(length)))
    return out

"""Literal documents for the filter tests, written for this project (no third-party text).

GOOD_* pages must pass every rule filter with the default config; the other texts each
break one rule.
"""

from __future__ import annotations

GOOD_EN = """The River Thames and its long history

The River Thames flows for about 346 kilometres through southern England, from the Cotswold hills to the North Sea. For centuries it was the main road of London, and the city grew along its banks because trade and travel were easier on the water than on land.

In the Middle Ages the river was crowded with boats that carried wool, timber and food to the markets of the city. Merchants built warehouses and docks on both sides, and the bridges that crossed the river became busy places with shops and houses.

By the nineteenth century the Thames had become badly polluted. The hot summer of 1858 produced the so-called Great Stink, and Parliament finally agreed to pay for a new system of sewers designed by the engineer Joseph Bazalgette.

Today the river is much cleaner than it was a hundred years ago. Seals and porpoises have been seen near the city, and many people walk or cycle along the paths that follow the water from the estuary to the source."""  # noqa: E501

GOOD_ZH = """长江是中国最长的河流，全长约六千三百公里，从青藏高原一直流到东海。
自古以来，长江流域就是中国经济和文化的重要地区。沿江的城市依靠航运发展起来，商人把粮食、丝绸和茶叶运往各地。
在二十世纪，人们在长江上修建了许多大桥和水利工程。三峡大坝是世界上最大的水电站之一，它为很多城市提供电力，也帮助控制洪水。
不过，大坝的建设也带来了一些问题。一些古老的村庄被水淹没，许多居民不得不搬到新的地方生活。科学家们还在研究大坝对鱼类和河流生态的影响。
今天，越来越多的人关心长江的保护。政府规定在一些河段禁止捕鱼，希望江豚等珍稀动物的数量能够慢慢恢复。"""  # noqa: E501

GOOD_JA = """富士山は日本で最も高い山で、標高は三七七六メートルです。静岡県と山梨県の境にあり、晴れた日には東京からも見ることができます。
昔から富士山は信仰の対象とされ、多くの人々が山頂を目指して登ってきました。江戸時代には富士講と呼ばれる団体が各地に作られました。
二〇一三年には、富士山は「信仰の対象と芸術の源泉」として世界文化遺産に登録されました。葛飾北斎の浮世絵にも、さまざまな角度から見た富士山が描かれています。
夏の登山シーズンには、毎年二十万人以上の登山者が訪れます。しかし、ごみの問題や混雑も深刻になっており、地元の自治体は入山料の導入などの対策を進めています。"""  # noqa: E501

GOOD_DE = """Der Rhein ist einer der wichtigsten Flüsse in Europa. Er entspringt in den Schweizer Alpen und fließt durch Deutschland und die Niederlande bis in die Nordsee.
Schon die Römer nutzten den Fluss als Grenze und als Handelsweg. Später entstanden an seinen Ufern Burgen, Klöster und reiche Städte wie Köln, Mainz und Basel.
Im neunzehnten Jahrhundert wurde der Rhein begradigt, damit größere Schiffe ihn befahren konnten. Das machte den Verkehr schneller, veränderte aber auch die Landschaft und die Tierwelt.
Heute ist der Fluss wieder sauberer als vor fünfzig Jahren, und sogar der Lachs ist in einige Nebenflüsse zurückgekehrt."""  # noqa: E501

SPAM = (
    "WINNER!! As a valued network customer you have been selected to receive a £900 prize "
    "reward! To claim call 09061701461. Claim code KL341. Valid 12 hours only. FREE entry "
    "in 2 a wkly comp to win FA Cup final tkts 21st May. Text FA to 87121 to receive entry "
    "question(std txt rate)T&C's apply 08452810075over18's. URGENT! Your Mobile No. was "
    "awarded £2000 Bonus Caller Prize on 5/9/03 This is our final try to contact U! Call "
    "from Landline 09064019788 BOX42WR29C, 150PPM"
)

SHORT_EN = "A short note about the weather. It was sunny and warm all day in the town."

# A navigation page: many short lines without punctuation.
MENU = "\n".join(
    [
        "Home", "About us", "Our products and services", "Latest news from the team",
        "Contact the sales office", "Careers at the company", "Press releases archive",
        "Investor relations overview", "Customer support portal", "Frequently asked questions",
        "Shipping and returns", "Store locator map", "Gift cards and vouchers",
        "Newsletter sign up form", "Follow us on social media", "Site map and index",
    ]
)  # fmt: skip

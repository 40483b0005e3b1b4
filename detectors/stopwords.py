"""Compact stop-word lists for the languages Stormvarsel watches (en, nb, nn, sv, da).

Written for this project: the function words that would otherwise crowd the top of every term
list. Social-media noise (``rt``, ``amp``, ``via``) is stopped in every language.
"""

from __future__ import annotations

_COMMON = "rt amp via http https www com co t.co gt lt the of"

_EN = """
a about above after again against all also am an and any are aren't as at be because been
before being below between both but by can can't cannot could couldn't did didn't do does doesn't
doing don't down during each even ever every few for from further get gets got had hadn't has
hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how
how's i i'd i'll i'm i've if im in into is isn't it it's its itself just let's like me more most
much must mustn't my myself no nor not now of off on once only or other ought our ours ourselves
out over own really same shan't she she'd she'll she's should shouldn't so some still such than
that that's the their theirs them themselves then there there's these they they'd they'll
they're they've this those though through to too u under until up upon us very was wasn't we
we'd we'll we're we've were weren't what what's when when's where where's which while who who's
whom why why's will with won't would wouldn't yet you you'd you'll you're you've your yours
yourself yourselves ur dont cant wont didnt doesnt isnt thats youre ive id ill one two go going
gonna wanna
"""

_NB = """
alle at av bare begge ble blei bli blir blitt både da de deg dei deim deira deires dem den denne
der dere deres det dette di din disse ditt du dykk dykkar då eg ein eit eitt eller elles en enn
er et ett etter for fordi fra før ha hadde han hans har hennar henne hennes her hjå ho hoe honom
hoss hossen hun hva hvem hver hvilke hvilken hvis hvor hvordan hvorfor i ikke ikkje ingen ingi
inkje inn inni ja jeg kan kom korleis korso kun kunne kva kvar kvarhelst kven kvi kvifor man mange
me med medan meg meget mellom men mi min mine mitt mot mykje ned no noe noen noka noko nokon
nokor nokre nå når og også om opp oss over på samme seg selv si sia sidan siden sin sine sitt sjøl
skal skulle slik so som somme somt så sånn til um upp ut uten var vart varte ved vere verte vi
vil ville vore vors vort være vært å fikk få får fått mye hele nei hei går
vår våre hos under mer mest flere andre annen annet alt nok litt helt heller enda igjen
fortsatt allerede kanskje like vel altså derfor likevel dessuten imidlertid ellers gjennom
hvilket hvert ingenting gjør gjøre gjorde gjort kommer må måtte veldig virkelig hatt mens
blant nesten svært ganske akkurat nemlig faktisk egentlig ham hverandre egen eget egne
"""

_NN = """
ein eit eg ikkje kva kvar kven korleis kvifor berre dei deim deira dykk dykkar ho honom hjå
medan mykje noko nokon nokre sidan sjølv vere verte vart vore no òg mellom utan
meir heile att difor frå fekk gjer gjere gjera enno framleis fleire anna kjem
"""

_SV = """
alla allt att av blev bli blir blivit de dem den denna deras dess dessa det detta dig din dina
ditt du där då efter ej eller en er ert ett från för ha hade han hans har henne hennes hon honom
hur här i icke ingen inom inte jag ju kan kunde man med mellan men mig min mina mitt mot mycket
ni nu när någon något några och om oss på samma sedan sig sin sina sitt själv skulle som så
sådan sådana sådant till under upp ut utan vad var vara varför varit varje vars vart vem vi vid
vilka vilkas vilken vilket vår våra vårt än är åt över också bara ska får fick inga inget mer
hos dom mej dej sej nån nåt igen även kommer hela helt vill ville måste fått kanske lite sen
skall få haft gör göra gjorde gjort går mest mera fler flera många andra annan annat ens alls
dock samt eftersom därför dessutom innan redan fortfarande nog väldigt verkligen genom ingenting
både heller dit enligt själva väl jätte faktiskt egentligen
"""

_DA = """
ad af alle alt anden at blev blive bliver da de dem den denne der deres det dette dig din disse
dog du efter eller en end er et for fra ham han hans har havde have hende hendes her hos hun hvad
hvis hvor i ikke ind jeg jer jo kunne man mange med meget men mig min mine mit mod ned noget nogle
nu når og også om op os over på selv sig sin sine sit skal skulle som sådan thi til ud under var
vi vil ville vor være været bare får fik kan helt hvorfor
vores jeres hvordan hvornår hvem hvilken hvilket hvilke hele igen lige nok mere mest flere
fordi ingen intet ingenting kun uden ved inden før gennem igennem nej ja andre andet samme
hver hvert nogen stadig endnu allerede måske lidt heller ellers derfor desuden alligevel
altså vel gør gøre gjorde gjort få fået haft må måtte går kommer virkelig rigtig både mens
blandt næsten ganske nemlig faktisk egentlig overhovedet sikke
"""

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset((_EN + _COMMON).split()),
    "nb": frozenset((_NB + _COMMON).split()),
    "nn": frozenset((_NB + _NN + _COMMON).split()),
    "sv": frozenset((_SV + _COMMON).split()),
    "da": frozenset((_DA + _COMMON).split()),
}
#: Used for languages without a list of their own (and unknown language): all lists together,
#: since a word that is a function word in one of them is rarely a complaint in another.
FALLBACK: frozenset[str] = frozenset().union(*STOP_WORDS.values())


def stop_words(lang: str | None) -> frozenset[str]:
    """The stop words for a language code (``nb``, ``sv-SE``, ...); all lists for others."""
    if not lang:
        return FALLBACK
    return STOP_WORDS.get(lang.split("-", 1)[0].lower(), FALLBACK)

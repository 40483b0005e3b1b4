"""The built-in wording of holding statements: per language and tone, one sentence per part.

A statement is assembled from parts according to severity (see :data:`PARTS_BY_SEVERITY`):
watch acknowledges and invites people to write privately; warning adds what is being done and
when the next update comes; critical adds an apology for the trouble (not an admission of blame)
and says the matter has priority. Humour does not belong in a crisis, so a playful brand speaks
in its warm voice at critical severity.

Slots: ``{issue}`` (plain words from the drivers, or a neutral phrase), ``{next_update}`` (from
the brand's configured update interval), ``{contact}`` (the brand's private channel).
"""

from __future__ import annotations

PARTS_BY_SEVERITY: dict[str, tuple[str, ...]] = {
    "watch": ("ack_watch", "invite"),
    "warning": ("ack", "doing", "update", "invite"),
    "critical": ("ack", "sorry", "doing_critical", "update", "invite"),
}

DRAFT_LABEL = {
    "en": "DRAFT: a person must approve this before it is posted",
    "nb": "UTKAST: må godkjennes av en person før publisering",
    "nn": "UTKAST: må godkjennast av ein person før publisering",
    "sv": "UTKAST: måste godkännas av en person före publicering",
    "da": "UDKAST: skal godkendes af en person før offentliggørelse",
}

#: The private channel when the brand configures none, and the wording around a configured URL.
DEFAULT_CONTACT = {
    "en": "a direct message",
    "nb": "en direktemelding",
    "nn": "ei direktemelding",
    "sv": "ett direktmeddelande",
    "da": "en direkte besked",
}
CONTACT_AT_URL = {
    "en": "a message at {url}",
    "nb": "en melding på {url}",
    "nn": "ei melding på {url}",
    "sv": "ett meddelande på {url}",
    "da": "en besked på {url}",
}

#: (minutes, hour, hours) forms of "within ..." per language.
NEXT_UPDATE = {
    "en": ("within {n} minutes", "within an hour", "within {n} hours"),
    "nb": ("innen {n} minutter", "innen en time", "innen {n} timer"),
    "nn": ("innan {n} minutt", "innan ein time", "innan {n} timar"),
    "sv": ("inom {n} minuter", "inom en timme", "inom {n} timmar"),
    "da": ("inden for {n} minutter", "inden for en time", "inden for {n} timer"),
}

TEXTS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "formal": {
            "ack_watch": "Thank you for making us aware of {issue}. We are looking into it.",
            "ack": "We are aware of the reports about {issue}.",
            "sorry": "We regret the inconvenience this is causing.",
            "doing": "Our team is looking into the matter.",
            "doing_critical": "The matter has our highest priority, and our team is looking "
            "into it now.",
            "update": "We will post an update here {next_update}.",
            "invite": "If you are affected, please send us {contact} so that we can assist "
            "you personally.",
        },
        "warm": {
            "ack_watch": "Thanks for telling us about {issue}. We're looking into it.",
            "ack": "We've seen your posts about {issue}, and we hear you.",
            "sorry": "We're sorry for the trouble this is causing you.",
            "doing": "Our team is looking into it right now.",
            "doing_critical": "Our whole team is working on this right now, as our top priority.",
            "update": "We'll share an update here {next_update}.",
            "invite": "If you're affected, send us {contact} so we can help you personally.",
        },
        "playful": {
            "ack_watch": "Thanks for the heads-up about {issue}! We're looking into it.",
            "ack": "We see you, and we've seen your posts about {issue}.",
            "doing": "Our team is digging into it right now.",
            "update": "A fresh update is coming here {next_update}.",
            "invite": "Affected? Send us {contact} so we can look at it with you one-on-one.",
        },
        "neutral": {
            "ack_watch": "We have seen the posts about {issue}, and we are looking into it.",
            "ack": "We have seen the posts about {issue}.",
            "sorry": "We are sorry for the trouble this causes.",
            "doing": "We are looking into it.",
            "doing_critical": "We are looking into it as a priority.",
            "update": "We will post an update here {next_update}.",
            "invite": "If you are affected, please send us {contact} so we can help.",
        },
    },
    "nb": {
        "formal": {
            "ack_watch": "Takk for at dere gjør oss oppmerksomme på {issue}. Vi ser på saken.",
            "ack": "Vi er kjent med henvendelsene om {issue}.",
            "sorry": "Vi beklager ulempene dette medfører.",
            "doing": "Teamet vårt undersøker saken.",
            "doing_critical": "Saken har høyeste prioritet, og teamet vårt undersøker den nå.",
            "update": "Vi legger ut en oppdatering her {next_update}.",
            "invite": "Er du berørt, ber vi deg sende oss {contact}, slik at vi kan hjelpe "
            "deg direkte.",
        },
        "warm": {
            "ack_watch": "Takk for at dere sier fra om {issue}. Vi ser på det.",
            "ack": "Vi har sett innleggene deres om {issue}, og vi hører dere.",
            "sorry": "Vi er lei oss for bryderiet dette skaper for dere.",
            "doing": "Teamet vårt ser på det akkurat nå.",
            "doing_critical": "Hele teamet vårt jobber med dette nå, med høyeste prioritet.",
            "update": "Vi kommer med en oppdatering her {next_update}.",
            "invite": "Er du berørt? Send oss {contact}, så vi kan hjelpe deg personlig.",
        },
        "playful": {
            "ack_watch": "Takk for tipset om {issue}! Vi ser på det.",
            "ack": "Vi ser dere, og vi har sett innleggene om {issue}.",
            "doing": "Teamet vårt graver i det akkurat nå.",
            "update": "Ny oppdatering kommer her {next_update}.",
            "invite": "Berørt? Send oss {contact}, så vi kan se på det sammen med deg.",
        },
        "neutral": {
            "ack_watch": "Vi har sett innleggene om {issue}, og vi ser på saken.",
            "ack": "Vi har sett innleggene om {issue}.",
            "sorry": "Vi beklager problemene dette skaper.",
            "doing": "Vi undersøker saken.",
            "doing_critical": "Vi undersøker saken med høy prioritet.",
            "update": "Vi legger ut en oppdatering her {next_update}.",
            "invite": "Er du berørt, send oss {contact}, så vi kan hjelpe deg.",
        },
    },
    "nn": {
        "formal": {
            "ack_watch": "Takk for at de gjer oss merksame på {issue}. Vi ser på saka.",
            "ack": "Vi er kjende med innspela om {issue}.",
            "sorry": "Vi orsakar ulempene dette fører med seg.",
            "doing": "Teamet vårt undersøkjer saka.",
            "doing_critical": "Saka har høgaste prioritet, og teamet vårt undersøkjer ho no.",
            "update": "Vi legg ut ei oppdatering her {next_update}.",
            "invite": "Er du råka, ber vi deg sende oss {contact}, slik at vi kan hjelpe deg "
            "direkte.",
        },
        "warm": {
            "ack_watch": "Takk for at de seier frå om {issue}. Vi ser på det.",
            "ack": "Vi har sett innlegga dykkar om {issue}, og vi høyrer dykk.",
            "sorry": "Vi er lei oss for bryet dette skaper for dykk.",
            "doing": "Teamet vårt ser på det akkurat no.",
            "doing_critical": "Heile teamet vårt arbeider med dette no, med høgaste prioritet.",
            "update": "Vi kjem med ei oppdatering her {next_update}.",
            "invite": "Er du råka? Send oss {contact}, så vi kan hjelpe deg personleg.",
        },
        "playful": {
            "ack_watch": "Takk for tipset om {issue}! Vi ser på det.",
            "ack": "Vi ser dykk, og vi har sett innlegga om {issue}.",
            "doing": "Teamet vårt grev i det akkurat no.",
            "update": "Ny oppdatering kjem her {next_update}.",
            "invite": "Råka? Send oss {contact}, så vi kan sjå på det saman med deg.",
        },
        "neutral": {
            "ack_watch": "Vi har sett innlegga om {issue}, og vi ser på saka.",
            "ack": "Vi har sett innlegga om {issue}.",
            "sorry": "Vi orsakar problema dette skaper.",
            "doing": "Vi undersøkjer saka.",
            "doing_critical": "Vi undersøkjer saka med høg prioritet.",
            "update": "Vi legg ut ei oppdatering her {next_update}.",
            "invite": "Er du råka, send oss {contact}, så vi kan hjelpe deg.",
        },
    },
    "sv": {
        "formal": {
            "ack_watch": "Tack för att ni uppmärksammar oss på {issue}. Vi undersöker saken.",
            "ack": "Vi känner till inläggen om {issue}.",
            "sorry": "Vi beklagar de besvär detta medför.",
            "doing": "Vårt team undersöker saken.",
            "doing_critical": "Ärendet har högsta prioritet och vårt team undersöker det nu.",
            "update": "Vi publicerar en uppdatering här {next_update}.",
            "invite": "Om du är berörd ber vi dig skicka oss {contact} så att vi kan hjälpa "
            "dig direkt.",
        },
        "warm": {
            "ack_watch": "Tack för att ni hör av er om {issue}. Vi tittar på det.",
            "ack": "Vi har sett era inlägg om {issue}, och vi hör er.",
            "sorry": "Vi är ledsna för besväret detta orsakar er.",
            "doing": "Vårt team tittar på det just nu.",
            "doing_critical": "Hela vårt team arbetar med detta nu, med högsta prioritet.",
            "update": "Vi återkommer med en uppdatering här {next_update}.",
            "invite": "Är du berörd? Skicka oss {contact} så att vi kan hjälpa dig personligen.",
        },
        "playful": {
            "ack_watch": "Tack för tipset om {issue}! Vi tittar på det.",
            "ack": "Vi ser er, och vi har sett inläggen om {issue}.",
            "doing": "Vårt team gräver i det just nu.",
            "update": "En ny uppdatering kommer här {next_update}.",
            "invite": "Berörd? Skicka oss {contact} så kikar vi på det tillsammans med dig.",
        },
        "neutral": {
            "ack_watch": "Vi har sett inläggen om {issue}, och vi undersöker saken.",
            "ack": "Vi har sett inläggen om {issue}.",
            "sorry": "Vi beklagar problemen detta orsakar.",
            "doing": "Vi undersöker saken.",
            "doing_critical": "Vi undersöker saken med hög prioritet.",
            "update": "Vi publicerar en uppdatering här {next_update}.",
            "invite": "Om du är berörd, skicka oss {contact} så att vi kan hjälpa dig.",
        },
    },
    "da": {
        "formal": {
            "ack_watch": "Tak, fordi I gør os opmærksomme på {issue}. Vi undersøger sagen.",
            "ack": "Vi er bekendt med henvendelserne om {issue}.",
            "sorry": "Vi beklager de gener, dette medfører.",
            "doing": "Vores team undersøger sagen.",
            "doing_critical": "Sagen har højeste prioritet, og vores team undersøger den nu.",
            "update": "Vi offentliggør en opdatering her {next_update}.",
            "invite": "Er du berørt, beder vi dig sende os {contact}, så vi kan hjælpe dig "
            "direkte.",
        },
        "warm": {
            "ack_watch": "Tak, fordi I siger til om {issue}. Vi kigger på det.",
            "ack": "Vi har set jeres opslag om {issue}, og vi hører jer.",
            "sorry": "Vi er kede af det besvær, det giver jer.",
            "doing": "Vores team kigger på det lige nu.",
            "doing_critical": "Hele vores team arbejder på det nu med højeste prioritet.",
            "update": "Vi vender tilbage med en opdatering her {next_update}.",
            "invite": "Er du berørt? Send os {contact}, så vi kan hjælpe dig personligt.",
        },
        "playful": {
            "ack_watch": "Tak for tippet om {issue}! Vi kigger på det.",
            "ack": "Vi ser jer, og vi har set opslagene om {issue}.",
            "doing": "Vores team graver i det lige nu.",
            "update": "Ny opdatering kommer her {next_update}.",
            "invite": "Berørt? Send os {contact}, så vi kan kigge på det sammen med dig.",
        },
        "neutral": {
            "ack_watch": "Vi har set opslagene om {issue}, og vi undersøger sagen.",
            "ack": "Vi har set opslagene om {issue}.",
            "sorry": "Vi beklager de problemer, det giver.",
            "doing": "Vi undersøger sagen.",
            "doing_critical": "Vi undersøger sagen med høj prioritet.",
            "update": "Vi offentliggør en opdatering her {next_update}.",
            "invite": "Er du berørt, så send os {contact}, så vi kan hjælpe dig.",
        },
    },
}

window.YTD.tweets.part1 = [
  {
    "tweet": {
      "edit_info": {
        "initial": {
          "editTweetIds": [
            "1500000000000000007"
          ],
          "editableUntil": "Sun Oct 14 10:00:00 +0000 2018",
          "editsRemaining": "5",
          "isEditEligible": true
        }
      },
      "retweeted": false,
      "source": "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities": {
        "hashtags": [],
        "symbols": [],
        "user_mentions": [],
        "urls": []
      },
      "display_text_range": [
        "0",
        "40"
      ],
      "favorite_count": "3",
      "id_str": "1500000000000000007",
      "truncated": false,
      "retweet_count": "0",
      "id": "1500000000000000007",
      "created_at": "Sun Oct 14 10:00:00 +0000 2018",
      "favorited": false,
      "full_text": "From the second part of a large archive.",
      "lang": "en"
    }
  }
]
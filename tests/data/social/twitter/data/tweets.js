window.YTD.tweets.part0 = [
  {
    "tweet": {
      "edit_info": {
        "initial": {
          "editTweetIds": [
            "1500000000000000001"
          ],
          "editableUntil": "Wed Oct 10 20:19:24 +0000 2018",
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
        "urls": [
          {
            "url": "https://t.co/abc123",
            "expanded_url": "https://packaging.python.org/en/latest/",
            "display_url": "packaging.python.org…",
            "indices": [
              "0",
              "23"
            ]
          }
        ]
      },
      "display_text_range": [
        "0",
        "64"
      ],
      "favorite_count": "3",
      "id_str": "1500000000000000001",
      "truncated": false,
      "retweet_count": "0",
      "id": "1500000000000000001",
      "created_at": "Wed Oct 10 20:19:24 +0000 2018",
      "favorited": false,
      "full_text": "Reading about packaging &amp; wheels https://t.co/abc123 #python",
      "lang": "en"
    }
  },
  {
    "tweet": {
      "edit_info": {
        "initial": {
          "editTweetIds": [
            "1500000000000000002"
          ],
          "editableUntil": "Thu Oct 11 08:00:00 +0000 2018",
          "editsRemaining": "5",
          "isEditEligible": true
        }
      },
      "retweeted": false,
      "source": "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities": {
        "hashtags": [],
        "symbols": [],
        "user_mentions": [
          {
            "name": "someone",
            "screen_name": "someone",
            "indices": [
              "0",
              "5"
            ],
            "id_str": "7",
            "id": "7"
          }
        ],
        "urls": []
      },
      "display_text_range": [
        "0",
        "31"
      ],
      "favorite_count": "3",
      "id_str": "1500000000000000002",
      "truncated": false,
      "retweet_count": "0",
      "id": "1500000000000000002",
      "created_at": "Thu Oct 11 08:00:00 +0000 2018",
      "favorited": false,
      "full_text": "@someone I disagree, but nicely",
      "lang": "en",
      "in_reply_to_status_id_str": "1000",
      "in_reply_to_status_id": "1000",
      "in_reply_to_screen_name": "someone",
      "in_reply_to_user_id": "8",
      "in_reply_to_user_id_str": "8"
    }
  },
  {
    "tweet": {
      "edit_info": {
        "initial": {
          "editTweetIds": [
            "1500000000000000003"
          ],
          "editableUntil": "Thu Oct 11 09:00:00 +0000 2018",
          "editsRemaining": "5",
          "isEditEligible": true
        }
      },
      "retweeted": false,
      "source": "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities": {
        "hashtags": [],
        "symbols": [],
        "user_mentions": [
          {
            "name": "ada",
            "screen_name": "ada",
            "indices": [
              "0",
              "5"
            ],
            "id_str": "7",
            "id": "7"
          }
        ],
        "urls": []
      },
      "display_text_range": [
        "0",
        "20"
      ],
      "favorite_count": "3",
      "id_str": "1500000000000000003",
      "truncated": false,
      "retweet_count": "0",
      "id": "1500000000000000003",
      "created_at": "Thu Oct 11 09:00:00 +0000 2018",
      "favorited": false,
      "full_text": "@ada and a follow-up",
      "lang": "en",
      "in_reply_to_status_id_str": "1500000000000000001",
      "in_reply_to_status_id": "1500000000000000001",
      "in_reply_to_screen_name": "ada",
      "in_reply_to_user_id": "8",
      "in_reply_to_user_id_str": "8"
    }
  },
  {
    "tweet": {
      "id_str": "1500000000000000004",
      "id": "1500000000000000004",
      "created_at": "Fri Oct 12 10:00:00 +0000 2018",
      "full_text": "RT @grace: Compilers are just translators with opinions.",
      "retweeted": false,
      "lang": "en",
      "entities": {
        "urls": [],
        "user_mentions": [
          {
            "screen_name": "grace",
            "id_str": "9"
          }
        ]
      }
    }
  },
  {
    "tweet": {
      "edit_info": {
        "initial": {
          "editTweetIds": [
            "1600000000000000005"
          ],
          "editableUntil": "Wed Mar 01 12:00:00 +0000 2023",
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
        "urls": [
          {
            "url": "https://t.co/LONG1",
            "expanded_url": "https://example.org/local-first",
            "display_url": "example.org/local-fi…",
            "indices": [
              "0",
              "23"
            ]
          }
        ]
      },
      "display_text_range": [
        "0",
        "271"
      ],
      "favorite_count": "3",
      "id_str": "1600000000000000005",
      "truncated": false,
      "retweet_count": "0",
      "id": "1600000000000000005",
      "created_at": "Wed Mar 01 12:00:00 +0000 2023",
      "favorited": false,
      "full_text": "Thread on why local-first software matters: your data stays on your machine, sync is a feature and not a landlord, and the app still works on a plane. Details in the write-up https://t.co/LONG1 and more to come. This part is only in the note tweet because tweets.js cuts…",
      "lang": "en"
    }
  },
  {
    "tweet": {
      "edit_info": {
        "initial": {
          "editTweetIds": [
            "1500000000000000006"
          ],
          "editableUntil": "Sat Oct 13 10:00:00 +0000 2018",
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
        "urls": [],
        "media": [
          {
            "expanded_url": "https://twitter.com/ada/status/1500000000000000006/photo/1",
            "indices": [
              "10",
              "33"
            ],
            "url": "https://t.co/MEDIA123",
            "media_url": "http://pbs.twimg.com/media/x.jpg",
            "id_str": "55",
            "id": "55",
            "media_url_https": "https://pbs.twimg.com/media/x.jpg",
            "sizes": {},
            "type": "photo",
            "display_url": "pic.twitter.com/MEDIA123",
            "ext_alt_text": "渋谷の交差点、雨の夜"
          }
        ]
      },
      "display_text_range": [
        "0",
        "29"
      ],
      "favorite_count": "3",
      "id_str": "1500000000000000006",
      "truncated": false,
      "retweet_count": "0",
      "id": "1500000000000000006",
      "created_at": "Sat Oct 13 10:00:00 +0000 2018",
      "favorited": false,
      "full_text": "東京の雨の写真 https://t.co/MEDIA123",
      "lang": "ja",
      "extended_entities": {
        "media": [
          {
            "expanded_url": "https://twitter.com/ada/status/1500000000000000006/photo/1",
            "indices": [
              "10",
              "33"
            ],
            "url": "https://t.co/MEDIA123",
            "media_url": "http://pbs.twimg.com/media/x.jpg",
            "id_str": "55",
            "id": "55",
            "media_url_https": "https://pbs.twimg.com/media/x.jpg",
            "sizes": {},
            "type": "photo",
            "display_url": "pic.twitter.com/MEDIA123",
            "ext_alt_text": "渋谷の交差点、雨の夜"
          }
        ]
      }
    }
  },
  {
    "tweet": {
      "full_text": "a tweet without an id",
      "created_at": "Sat Oct 13 11:00:00 +0000 2018"
    }
  }
]